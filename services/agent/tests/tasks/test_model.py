import pytest

from tracewheel.agent.tasks import RefNotFound, Step, Target, resolve_ref
from tracewheel.agent.tasks.steps import fill_form

SNAPSHOT = """\
- generic [active] [ref=e1]:
  - banner [ref=e2]:
    - link "Tracewheel Shop" [ref=e3] [cursor=pointer]:
      - /url: /
    - search [ref=e4]:
      - searchbox "Search" [ref=e6]
      - button "Search" [ref=e7]
  - main [ref=f1e8]:
    - heading "Results for \\"red\\"" [level=1] [ref=f1e9]
    - list "Results" [ref=f1e10]:
      - listitem [ref=f1e11]:
        - link "Red Oak Kettle" [ref=f1e12] [cursor=pointer]:
          - /url: /item/TW-1000
        - text: $12.00
      - listitem [ref=f1e13]:
        - link "Red Oak Kettle" [ref=f1e14] [cursor=pointer]:
          - /url: /item/TW-1001
"""


def test_resolve_ref_finds_role_and_exact_name() -> None:
    assert resolve_ref(SNAPSHOT, Target("searchbox", "Search")) == "e6"
    assert resolve_ref(SNAPSHOT, Target("button", "Search")) == "e7"
    assert resolve_ref(SNAPSHOT, Target("link", "Red Oak Kettle")) == "f1e12"
    assert resolve_ref(SNAPSHOT, Target("link", "Red Oak Kettle", nth=1)) == "f1e14"
    assert resolve_ref(SNAPSHOT, Target("heading", 'Results for "red"')) == "f1e9"
    assert resolve_ref(SNAPSHOT, Target("main", "")) == "f1e8"


@pytest.mark.parametrize(
    "target",
    [
        Target("link", "Red Oak"),
        Target("link", "red oak kettle"),
        Target("button", "Tracewheel Shop"),
        Target("link", "Red Oak Kettle", nth=2),
    ],
)
def test_resolve_ref_raises_with_the_names_it_saw(target: Target) -> None:
    with pytest.raises(RefNotFound, match=f"no {target.role}") as info:
        resolve_ref(SNAPSHOT, target)
    assert "names there:" in str(info.value)


def test_step_call_arguments_fill_element_and_ref() -> None:
    step = Step("browser_type", {"text": "red", "submit": True}, "Search.", Target("searchbox", "Search"))
    assert step.call_arguments(SNAPSHOT) == {
        "element": 'searchbox "Search"',
        "ref": "e6",
        "text": "red",
        "submit": True,
    }
    assert Step("browser_navigate", {"url": "http://x/"}, "Go.").call_arguments() == {"url": "http://x/"}
    with pytest.raises(ValueError, match="snapshot"):
        step.call_arguments()


def test_a_form_step_resolves_a_ref_for_every_field() -> None:
    step = fill_form([("searchbox", "Search", "textbox", "red"), ("link", "Red Oak Kettle", "textbox", "2")], "Fill.")
    assert step.targeted
    assert step.call_arguments(SNAPSHOT) == {
        "fields": [
            {"name": "Search", "type": "textbox", "ref": "e6", "value": "red"},
            {"name": "Red Oak Kettle", "type": "textbox", "ref": "f1e12", "value": "2"},
        ]
    }
    with pytest.raises(ValueError, match="snapshot"):
        step.call_arguments()
    missing = fill_form([("searchbox", "Search", "textbox", "red"), ("combobox", "Delivery", "combobox", "Pickup")], "")
    with pytest.raises(RefNotFound, match='no combobox "Delivery"'):
        missing.call_arguments(SNAPSHOT)
