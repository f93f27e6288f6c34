// tracewheel curation UI: actions go through the REST API; keyboard shortcuts for fast review.
"use strict";

const STALE = "This trace changed since you opened it; reload.";
// a signed-in page's CSRF token: the service refuses a change on a session without it
const CSRF = document.querySelector("meta[name=csrf-token]").content;

function showBanner(text) {
  const banner = document.getElementById("banner");
  document.getElementById("banner-text").textContent = text;
  banner.hidden = false;
  banner.querySelector("[data-action=reload]").focus();
}

async function api(method, url, body) {
  const options = { method, headers: CSRF ? { "X-CSRF-Token": CSRF } : {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    showBanner(`The dataset service did not answer (${err}).`);
    return null;
  }
  if (response.status === 409) {
    showBanner(STALE);
    return null;
  }
  if (response.status === 401) {
    showBanner("Your session ended; reload the page to sign in again.");
    return null;
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    showBanner(`Not saved: ${message}`);
    return null;
  }
  return response.json();
}

const main = document.getElementById("trace");
const traceId = main ? main.dataset.traceId : "";
const revision = main ? Number(main.dataset.revision) : 0;
const traceUrl = `/api/traces/${encodeURIComponent(traceId)}`;
let focusedMessage = null;
let editing = null;

async function act(method, path, body) {
  if (await api(method, traceUrl + path, body)) window.location.reload();
}

function approve() {
  return act("POST", "/curate", { status: "approved", reason: "", base_revision: revision });
}

function openReject() {
  const dialog = document.getElementById("reject-dialog");
  dialog.showModal();
  document.getElementById("reject-reason").focus();
}

function openEdit(article, field) {
  const shown = article.querySelector(`pre[data-field=${field}]`);
  editing = { index: Number(article.dataset.index), field, article };
  document.getElementById("edit-title").textContent =
    `Edit message #${editing.index} ${field === "content" ? "content" : "reasoning"}`;
  const text = document.getElementById("edit-text");
  text.value = shown ? shown.textContent : "";
  document.getElementById("edit-dialog").showModal();
  text.focus();
}

function currentMessage() {
  const active = document.activeElement && document.activeElement.closest("article.message");
  return active || focusedMessage;
}

async function signOut() {
  const response = await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": CSRF } });
  if (response.ok) window.location.assign("/login");
}

function go(url) {
  if (url) window.location.assign(url);
}

function onClick(event) {
  const button = event.target.closest("[data-action]");
  if (!button) return;
  const article = button.closest("article.message");
  switch (button.dataset.action) {
    case "shortcuts": document.getElementById("shortcuts").showModal(); break;
    case "reload": window.location.reload(); break;
    case "dismiss": document.getElementById("banner").hidden = true; break;
    case "close": button.closest("dialog").close(); break;
    case "approve": approve(); break;
    case "sign-out": signOut(); break;
    case "reject": openReject(); break;
    case "strip-guidance": act("POST", "/strip-guidance", { base_revision: revision }); break;
    case "edit": openEdit(article, button.dataset.field); break;
    case "delete-turn":
      if (window.confirm(`Delete turn #${article.dataset.index} (and the tool results that answer it)?`)) {
        act("DELETE", `/messages/${article.dataset.index}?base_revision=${revision}`);
      }
      break;
  }
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") || document.querySelector("dialog[open]");
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
  if (event.key === "?") {
    document.getElementById("shortcuts").showModal();
  } else if (main && event.key === "a") {
    approve();
  } else if (main && event.key === "r") {
    openReject();
  } else if (main && event.key === "j") {
    go(main.dataset.nextUrl);
  } else if (main && event.key === "k") {
    go(main.dataset.previousUrl);
  } else if (main && event.key === "e") {
    const article = currentMessage();
    if (article) openEdit(article, "content");
    else showBanner("Focus a message first (click it or Tab to it), then press e.");
  } else {
    return;
  }
  event.preventDefault();
}

function wireTracePage() {
  document.addEventListener("focusin", (event) => {
    const article = event.target.closest && event.target.closest("article.message");
    if (article) focusedMessage = article;
  });
  document.getElementById("reject-form").addEventListener("submit", (event) => {
    const reason = document.getElementById("reject-reason").value.trim();
    if (!reason) { event.preventDefault(); return; }
    act("POST", "/curate", { status: "rejected", reason, base_revision: revision });
  });
  document.getElementById("edit-form").addEventListener("submit", () => {
    const body = { base_revision: revision };
    body[editing.field] = document.getElementById("edit-text").value;
    act("POST", `/messages/${editing.index}`, body);
  });
  document.getElementById("tags-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const tags = event.target.elements.tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) act("POST", "/tags", { add: tags });
  });
  document.getElementById("notes-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("POST", "/notes", { notes: document.getElementById("notes").value });
  });
}

document.addEventListener("click", onClick);
document.addEventListener("keydown", onKey);
if (main) wireTracePage();
