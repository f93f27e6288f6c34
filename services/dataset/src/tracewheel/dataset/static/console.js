// tracewheel console: confirmed actions and live sections (uses api() and showBanner() from ui.js).
"use strict";

const NOTICE_KEY = "tracewheel-console-notice";

// <form data-confirm="Roll back ...?" action="/console/api/..."> posts its fields as JSON once confirmed;
// the page reloads with the service's answer shown, or keeps the error in the banner.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (!form) return;
  event.preventDefault();
  if (!window.confirm(form.dataset.confirm)) return;
  const result = await api("POST", form.action, Object.fromEntries(new FormData(form)));
  if (result) {
    sessionStorage.setItem(NOTICE_KEY, result.message || "Done.");
    window.location.reload();
  }
});

function showNotice() {
  const text = sessionStorage.getItem(NOTICE_KEY);
  const notice = document.getElementById("notice");
  if (!text || !notice) return;
  sessionStorage.removeItem(NOTICE_KEY);
  notice.textContent = text;
  notice.hidden = false;
}

// <section data-live="/console/.../fragment" data-live-events="/console/events"> is re-fetched whenever
// the event stream says something changed (polled every 5 s where the stream cannot connect).
function followLive(section) {
  let fetching = false;
  const refresh = async () => {
    if (fetching) return;
    fetching = true;
    try {
      const response = await fetch(section.dataset.live, { headers: { Accept: "text/html" } });
      if (response.ok) {
        section.innerHTML = await response.text();
        section.dataset.refreshed = String(Number(section.dataset.refreshed || 0) + 1);
      }
    } finally {
      fetching = false;
    }
  };
  if (window.EventSource && section.dataset.liveEvents) {
    const events = new EventSource(section.dataset.liveEvents);
    events.addEventListener("changed", refresh);
  } else {
    window.setInterval(refresh, 5000);
  }
}

showNotice();
document.querySelectorAll("[data-live]").forEach(followLive);
