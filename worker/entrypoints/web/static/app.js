// Small progressive enhancements of server-rendered pages; every link and form works without this file.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

async function fetchPart(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    ...options,
    headers: { "X-Partial": "1", "X-CSRF-Token": csrf(), ...(options.headers || {}) },
  });
  if (response.status === 401) { window.location.assign("/aanmelden?next=" + encodeURIComponent(location.pathname + location.search)); }
  return response.text();
}

// Replace the elements matching `selectors` with those of a fresh render of this page.
async function refresh(selectors) {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const selector of selectors) {
    const now = document.querySelector(selector);
    const next = fresh.querySelector(selector);
    if (now && next) now.replaceWith(next);
  }
}

// The latest few live notices, newest first: a step turning red right after a new question must not hide it.
function notify(text) {
  const notice = document.getElementById("live-notice");
  if (!notice || !text) return;
  const lines = [text, ...[...notice.children].map((line) => line.textContent).filter((line) => line !== text)];
  notice.replaceChildren(...lines.slice(0, 3).map((line) => Object.assign(document.createElement("div"), { textContent: line })));
  notice.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { notice.hidden = true; }, 8000);
}

// The question beside the list: open it without leaving the list.
document.addEventListener("click", async (event) => {
  const link = event.target.closest("a[data-pane]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  const pane = document.getElementById("question-pane");
  pane.innerHTML = await fetchPart(link.href);
  history.pushState({}, "", link.href);
  document.querySelectorAll("tr.selected").forEach((row) => row.classList.remove("selected"));
  link.closest("tr")?.classList.add("selected");
});

// Decisions: post, then show the outcome where the button was.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-decide]");
  if (!form) return;
  const pane = form.closest("#question-pane");
  const bulk = form.closest(".list-side");
  if (!pane && !bulk) return; // the other pages post as whole pages
  event.preventDefault();
  const data = new FormData(form);
  if (event.submitter?.name) data.set(event.submitter.name, event.submitter.value);
  form.querySelectorAll("button").forEach((button) => { button.disabled = true; });
  event.submitter?.setAttribute("data-busy", "");
  // getAttribute: the form has a field named "action", which shadows form.action.
  const html = await fetchPart(form.getAttribute("action"), { method: "POST", body: data });
  if (pane) {
    pane.innerHTML = html;
    await refresh(["#question-list", '[data-testid="total"]']);
  } else {
    let target = document.getElementById("bulk-result");
    if (!target) {
      target = document.createElement("div");
      target.id = "bulk-result";
      form.after(target);
    }
    target.innerHTML = html;
    form.querySelectorAll("button").forEach((button) => { button.disabled = false; });
    await refresh(["#question-list", '[data-testid="total"]']);
  }
});

// Type-ahead: RegiCRM for Koppelen, employees by name, a manager by name.
document.addEventListener("input", (event) => {
  const input = event.target.closest("input[data-search]");
  if (!input) return;
  clearTimeout(input.timer);
  input.timer = setTimeout(async () => {
    const search = input.dataset.search;
    const url = search + (search.includes("?") ? "&" : "?") + "q=" + encodeURIComponent(input.value);
    document.getElementById(input.dataset.target || "search-hits").innerHTML = await fetchPart(url);
  }, 200);
});

// Live: new questions, outcomes, steps turning red, without reloading.
if (document.getElementById("live-notice") && window.EventSource) {
  const live = new EventSource("/live");
  const messages = JSON.parse(document.body.dataset.live || "{}");
  const onQuestions = () => location.pathname.startsWith("/vragen");
  const onOverview = () => location.pathname.startsWith("/overzicht");
  // What happened while the stream was down (a reconnect) is not replayed: read the page anew instead.
  live.addEventListener("open", () => {
    if (document.body.dataset.liveState === "lost") {
      if (onQuestions()) refresh(["#question-list", '[data-testid="total"]']);
      if (onOverview()) refresh(["main"]);
    }
    document.body.dataset.liveState = "open";
  });
  live.addEventListener("error", () => { document.body.dataset.liveState = "lost"; });
  live.addEventListener("vraag", () => {
    notify(messages.question || "");
    if (onQuestions()) refresh(["#question-list", '[data-testid="total"]']);
    if (onOverview()) refresh(["main"]);
  });
  // A step's status as last seen (the overview's table, then the events): only a turn from green is news; a red
  // step whose counts change is published again but did not "turn" red.
  const steps = Object.fromEntries([...document.querySelectorAll("tr[data-step]")].map((row) => [row.dataset.step, row.className]));
  for (const name of ["stap", "poll"]) {
    live.addEventListener(name, (event) => {
      const data = JSON.parse(event.data);
      if (name === "stap") {
        if (data.status === "red" && steps[data.step] === "green") notify(messages.red || "");
        steps[data.step] = data.status;
      }
      if (onOverview()) refresh(["main"]);
    });
  }
  live.addEventListener("uitkomst", () => { if (onQuestions()) refresh(["#question-list", '[data-testid="total"]']); });
}

// A page still in progress (the steps of "sync this employee now") is fetched again until its server render
// no longer marks it running.
setInterval(() => { if (document.querySelector("[data-refresh]")) refresh(["#sync-steps"]); }, 1000);
