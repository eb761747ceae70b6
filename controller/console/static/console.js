// eais console: forms and buttons run EAIS actions through /console/api/actions/<Action>; the instance
// list and panel stay live through a server-sent event stream (polling when it cannot connect); charts refresh.
"use strict";

const SIGNED_OUT = "IncompleteSignature";  // the console API's answer once the session has ended
const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

function notify(kind, html) {
  const box = $("#notice");
  box.className = `notice shown ${kind}`;
  box.innerHTML = html;
  box.scrollIntoView({ block: "nearest" });
}

function escapeHtml(text) {
  const span = document.createElement("span");
  span.textContent = String(text ?? "");
  return span.innerHTML;
}

function showError(action, body) {
  notify("error", `<span class="code">${escapeHtml(body.Code)}</span>${escapeHtml(action)} was refused: ` +
    `${escapeHtml(body.Message)}<span class="rid">RequestId ${escapeHtml(body.RequestId)}</span>`);
}

async function runAction(action, params) {
  const answer = await fetch(`/console/api/actions/${encodeURIComponent(action)}`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrfToken() },
    body: new URLSearchParams(params),
  });
  const body = await answer.json().catch(() => ({ Code: `HTTP ${answer.status}`, Message: "The console could not read the answer." }));
  if (body.Code === SIGNED_OUT) { goSignIn(); return null; }
  if (!answer.ok) { showError(action, body); return null; }
  return body;
}

function goSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/console/sign-in?reason=${encodeURIComponent("Your session has ended; sign in again.")}&next=${encodeURIComponent(next)}`);
}

const ACCEPTED = {
  CreateEai: (b) => `CreateEai accepted: <span class="mono">${escapeHtml(b.ElasticAcceleratedInstanceId)}</span> is starting.`,
  AttachEai: (b) => `AttachEai accepted: attaching to <span class="mono">${escapeHtml(b.ClientInstanceId)}</span>; the status turns InUse once both agents are ready.`,
  DetachEai: () => "DetachEai accepted: detaching; the status turns Available once the worker is gone.",
  DeleteEai: () => "DeleteEai accepted: the instance is released and billing for it stops.",
};

async function act(action, params, done) {
  const body = await runAction(action, params);
  if (!body) return;
  const said = (ACCEPTED[action] || (() => `${escapeHtml(action)} done.`))(body);
  notify("ok", `${said}<span class="rid">RequestId ${escapeHtml(body.RequestId)}</span>`);
  if (done) done(body);
  await refreshAll();
}

function formParams(form) {
  const params = {};
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim() !== "") params[name] = String(value).trim();
  }
  return params;
}

// Forms: <form data-action="CreateEai"> with inputs named as the API's parameters.
document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form[data-action]");
  if (!form) return;
  event.preventDefault();
  const button = $("button[type=submit]", form);
  if (button) button.disabled = true;
  try {
    await act(form.dataset.action, formParams(form), () => {
      if (form.dataset.reset !== undefined) form.reset();
      form.closest("dialog")?.close();
      if (form.dataset.after) location.assign(form.dataset.after);
    });
  } finally {
    if (button) button.disabled = false;
  }
});

// Buttons: data-action + data-params (JSON); data-dialog opens a confirmation dialog first.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action], button[data-dialog]");
  if (!button) return;
  event.preventDefault();
  const params = JSON.parse(button.dataset.params || "{}");
  if (button.dataset.dialog) { openDialog(button.dataset.dialog, params, button.dataset); return; }
  button.disabled = true;
  try { await act(button.dataset.action, params); } finally { button.disabled = false; }
});

function openDialog(id, params, data) {
  const dialog = document.getElementById(id);
  const form = $("form", dialog);
  $$("input[data-param]", form).forEach((input) => { input.value = params[input.dataset.param] || ""; });
  $$("[data-show]", dialog).forEach((el) => { el.textContent = params[el.dataset.show] || data[el.dataset.show] || ""; });
  const force = $("input[name=Force]", form);
  if (force) {
    force.checked = data.needsForce === "true";
    $(".force-needed", dialog).hidden = data.needsForce !== "true";
  }
  dialog.showModal();
}

document.addEventListener("click", (event) => {
  const cancel = event.target.closest("dialog button[value=cancel]");
  if (cancel) { event.preventDefault(); cancel.closest("dialog").close(); }
});

// Live parts: <div data-live="URL"> is fetched again whenever the event stream reports a change.
async function refresh(box) {
  const answer = await fetch(box.dataset.live, { credentials: "same-origin", headers: { "X-Requested-With": "console" } });
  if (answer.ok) { box.innerHTML = await answer.text(); return; }
  const body = await answer.json().catch(() => ({}));
  if (body.Code === SIGNED_OUT) goSignIn();
}

async function refreshAll() {
  await Promise.all($$("[data-live]").map(refresh));
}

function watch(url) {
  const indicator = $("#live");
  let polling = null;
  const startPolling = () => {
    if (polling) return;
    indicator.textContent = "updating every 3 s";
    indicator.classList.add("on");
    polling = setInterval(refreshAll, 3000);
  };
  if (!window.EventSource) { startPolling(); return; }
  const source = new EventSource(url);
  source.addEventListener("open", () => { indicator.textContent = "live"; indicator.classList.add("on"); });
  source.addEventListener("instances", refreshAll);  // the first one too: something may have changed since the page was drawn
  source.addEventListener("error", () => {
    indicator.classList.remove("on");
    indicator.textContent = "reconnecting…";
    if (source.readyState === EventSource.CLOSED) startPolling();
  });
}

// Charts: <div data-charts="URL" data-every="15"> refreshes itself.
function refreshCharts() {
  $$("[data-charts]").forEach((box) => {
    const every = Number(box.dataset.every || 15) * 1000;
    setInterval(async () => {
      const answer = await fetch(box.dataset.charts, { credentials: "same-origin", headers: { "X-Requested-With": "console" } });
      if (answer.ok) box.innerHTML = await answer.text();
    }, every);
  });
}

document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-submit-on-change]")) event.target.form.submit();
});

document.addEventListener("DOMContentLoaded", () => {
  const page = $("main[data-events]");
  if (page) watch(page.dataset.events);
  refreshCharts();
});
