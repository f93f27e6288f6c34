"""NATS credentials and subject permissions: a user per service, each allowed its own subjects only.

`ROLES` says, once, what each NATS user publishes and which streams it consumes (docs/events.md);
the server's permissions follow from it (`permissions`): publishing a subject it owns, declaring
the streams it touches, creating and reading its own consumers, acking its own messages,
dead-lettering what it consumes, and replies on its own inbox prefix (`_INBOX_<user>.>`), so no
user reads another's replies. Everything else is refused by the server: the dataset user cannot
publish `models.v1.trained`, and a client without a password cannot connect at all.

`server_config` writes the nats-server configuration every deployment uses (`tracewheel up`,
docker-compose, the k8s base); passwords are not in it: the server reads each from its
environment (`TW_NATS_PASSWORD_<USER>`), and each service gets its own through its settings
(`TW_<SERVICE>_NATS_USER`, `TW_<SERVICE>_NATS_PASSWORD`, with `NatsOptions`).

`python -m tracewheel.core.nats_auth passwords` prints fresh passwords as an env file;
`python -m tracewheel.core.nats_auth config` prints the server configuration.
"""

from __future__ import annotations

import fnmatch
import json
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from tracewheel.core.errors import ConfigError
from tracewheel.core.events import (
    DEAD_LETTER_PREFIX,
    STREAMS,
    SUBJECT_DATASET_BUILT,
    SUBJECT_MODEL_DEPLOYED,
    SUBJECT_MODEL_TRAINED,
    SUBJECT_TRACE_COMPLETED,
    SUBJECT_TRAINING_PROGRESS,
    inbox_prefix,
)
from tracewheel.core.settings import NatsOptions

DEADLETTER = "DEADLETTER"

ADMIN_USER = "admin"  # every subject: people inspecting streams (`nats stream view DEADLETTER`), tests
PASSWORD_VARIABLE_PREFIX = "TW_NATS_PASSWORD_"
# nats-server parses a password read from the environment as a config value: it must start with a
# letter to stay a string (digits become numbers, "yes" a boolean)
_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{15,}$")


def stream_of(subject: str) -> str | None:
    """The JetStream stream that captures `subject` (None: core NATS, not persisted)."""
    for stream, patterns in STREAMS.items():
        # a stream's patterns end in ">" (events.STREAMS): a prefix match is NATS's match
        if any(fnmatch.fnmatchcase(subject, pattern.replace(">", "*")) for pattern in patterns):
            return stream
    return None


@dataclass(frozen=True)
class Consumes:
    """A pull consumer a user reads: its stream, subject and durable name ("*": any name, and
    ephemeral consumers, such as each inference replica's follower of deployments)."""

    stream: str
    subject: str
    durable: str


@dataclass(frozen=True)
class NatsRole:
    """What one NATS user may do: the subjects it publishes and the consumers it reads."""

    publishes: tuple[str, ...] = ()
    consumes: tuple[Consumes, ...] = field(default_factory=tuple)

    def streams(self) -> list[str]:
        """The streams this user declares (`events.ensure_streams`): those it writes or reads."""
        found = [stream_of(subject) for subject in self.publishes]
        found += [consumer.stream for consumer in self.consumes]
        if self.consumes:
            found.append(DEADLETTER)  # a consumer copies poison messages there
        return sorted({stream for stream in found if stream})


ROLES: dict[str, NatsRole] = {
    "agent": NatsRole(publishes=(SUBJECT_TRACE_COMPLETED,)),
    "importer": NatsRole(publishes=(SUBJECT_TRACE_COMPLETED,)),  # bulk loaders and benchmarks
    "dataset": NatsRole(
        publishes=(SUBJECT_DATASET_BUILT,),
        consumes=(Consumes("TRACES", SUBJECT_TRACE_COMPLETED, "dataset-ingest"),),
    ),
    "trainer": NatsRole(
        publishes=(SUBJECT_MODEL_TRAINED, SUBJECT_TRAINING_PROGRESS),
        consumes=(
            Consumes("DATASETS", SUBJECT_DATASET_BUILT, "trainer"),
            Consumes("MODELS", SUBJECT_MODEL_DEPLOYED, "trainer-deployed"),
        ),
    ),
    "inference": NatsRole(
        publishes=(SUBJECT_MODEL_DEPLOYED, SUBJECT_TRACE_COMPLETED),  # deployments, captured conversations
        consumes=(
            Consumes("MODELS", SUBJECT_MODEL_TRAINED, "*"),  # the gate: one replica decides (inference-deploy)
            Consumes("MODELS", SUBJECT_MODEL_DEPLOYED, "*"),  # every replica follows deployments (its own consumer)
        ),
    ),
}
USERS = (*ROLES, ADMIN_USER)


def declared_streams(user: str) -> dict[str, list[str]]:
    """The streams (name -> subjects) a service declares at start (`events.ensure_streams`): those
    its NATS user may declare; every stream for the admin or a user not in ROLES (no authorization)."""
    role = ROLES.get(user)
    return dict(STREAMS) if role is None else {name: STREAMS[name] for name in role.streams()}


def _consumer_subjects(consumer: Consumes) -> list[str]:
    stream, name = consumer.stream, consumer.durable
    api = "$JS.API.CONSUMER"
    ephemeral = [f"{api}.CREATE.{stream}"] if name == "*" else []  # the server names the consumer
    return [
        *ephemeral,
        f"{api}.INFO.{stream}.{name}",
        f"{api}.CREATE.{stream}.{name}",
        f"{api}.CREATE.{stream}.{name}.>",  # nats-server >= 2.9 names the filter subject too
        f"{api}.DURABLE.CREATE.{stream}.{name}",
        f"{api}.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
        f"{DEAD_LETTER_PREFIX}{consumer.subject}",
    ]


def permissions(user: str) -> dict[str, dict[str, list[str]]]:
    """The server-side permissions of `user`: what it may publish and subscribe to.

    Raises:
        ConfigError: no such user.
    """
    if user == ADMIN_USER:
        return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}
    role = ROLES.get(user)
    if role is None:
        raise ConfigError(f"no NATS user {user!r}; the users are {', '.join(USERS)}")
    publish = list(role.publishes)
    for stream in role.streams():
        publish += [f"$JS.API.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]
    for consumer in role.consumes:
        publish += _consumer_subjects(consumer)
    allow = list(dict.fromkeys(publish))  # two consumers of one stream share subjects
    return {"publish": {"allow": allow}, "subscribe": {"allow": [f"{inbox_prefix(user)}.>"]}}


def password_variable(user: str) -> str:
    """The environment variable the server reads `user`'s password from: TW_NATS_PASSWORD_<USER>."""
    return PASSWORD_VARIABLE_PREFIX + user.upper().replace("-", "_")


def new_password() -> str:
    """A random password the server config reads back as a string."""
    return "tw" + secrets.token_hex(24)


def check_password(user: str, password: str) -> None:
    """Raises:
    ConfigError: the password would not survive the server config (or is short).
    """
    if not _PASSWORD.match(password):
        raise ConfigError(
            f"{password_variable(user)}: a NATS password is 16+ characters of letters, digits, '-' and '_', "
            "starting with a letter (nats-server reads others as numbers or booleans)"
        )


def server_config(*, max_payload: int, users: Iterable[str] | None = USERS, tls: ServerTls | None = None) -> str:
    """The nats-server configuration: the message size limit, the users (None: no authorization)
    with passwords from the server's environment, and TLS when given."""
    lines = [
        "# tracewheel's NATS settings: generated by tracewheel.core.nats_auth (do not edit by hand).",
        f"max_payload: {max_payload}",
    ]
    if tls is not None:
        lines += ["tls {", f"  cert_file: {json.dumps(str(tls.cert_file))}"]
        lines.append(f"  key_file: {json.dumps(str(tls.key_file))}")
        if tls.ca_file is not None:  # clients must present a certificate signed by it
            lines += [f"  ca_file: {json.dumps(str(tls.ca_file))}", "  verify: true"]
        lines.append("}")
    if users is not None:
        lines += ["authorization {", "  users = ["]
        for user in users:
            entry = {"user": user, "password": f"${password_variable(user)}", "permissions": permissions(user)}
            # JSON is valid NATS config, except that a $VARIABLE reference must stay unquoted
            text = json.dumps(entry, indent=2).replace(f'"${password_variable(user)}"', f"${password_variable(user)}")
            lines += ["    " + line for line in text.splitlines()]
        lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key; with `ca_file`, clients must present a certificate it signed."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None


def credentials(user: str, passwords: dict[str, str], url: str) -> NatsOptions:
    """The options a client of `user` connects with on a server run with `passwords`."""
    return NatsOptions(nats_url=url, nats_user=user, nats_password=SecretStr(passwords[user]))


def load_or_create_passwords(path: Path) -> dict[str, str]:
    """The local stack's passwords, one per user, kept in `path` (mode 0600); created on first use.

    Raises:
        ConfigError: the file holds a password the server config cannot read.
    """
    passwords: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [user for user in USERS if user not in passwords]
    for user in missing:
        passwords[user] = new_password()
    for user in USERS:
        check_password(user, passwords[user])
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(passwords, indent=1))
    return passwords


def server_environment(passwords: dict[str, str]) -> dict[str, str]:
    """The variables a nats-server run with `server_config` reads the passwords from."""
    return {password_variable(user): password for user, password in passwords.items()}


def main(argv: list[str]) -> int:
    """`passwords`: fresh passwords as an env file; `config`: the server configuration."""
    from tracewheel.core.trace_size import DEFAULT_MAX_TRACE_BYTES, wire_limit

    if argv == ["passwords"]:
        for user in USERS:
            print(f"{password_variable(user)}={new_password()}")
        return 0
    if argv == ["config"]:
        print(server_config(max_payload=wire_limit(DEFAULT_MAX_TRACE_BYTES)), end="")
        return 0
    print("usage: python -m tracewheel.core.nats_auth passwords|config", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
