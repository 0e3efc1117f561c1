// The Tend window: renders what the tray knows (the `snapshot` command) and
// re-renders when the tray says it changed (the `state` event). Everything
// but a check's fix is put in as text; the fix is HTML the tray rendered
// from markdown and sanitized.
"use strict";

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;

const LABELS = {
  passed: "Passing",
  failed: "Failing",
  error: "Could not run",
  not_applicable: "Does not apply",
  pending: "Not checked yet",
};
const busy = new Set();     // checks being re-checked
const notes = new Map();    // check id -> a note under its buttons
let focusId = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function when(iso) {
  if (!iso) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return null;
  const secs = Math.round((d.getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  const abs = Math.abs(secs);
  const rel = abs < 60 ? rtf.format(secs, "second")
    : abs < 3600 ? rtf.format(Math.round(secs / 60), "minute")
    : abs < 86400 ? rtf.format(Math.round(secs / 3600), "hour")
    : rtf.format(Math.round(secs / 86400), "day");
  return `${d.toLocaleString()} (${rel})`;
}

function announce(text) {
  const a = document.getElementById("announce");
  a.textContent = "";
  setTimeout(() => { a.textContent = text; }, 50);
}

function renderCheck(c) {
  const status = c.status || "pending";
  const li = el("li", {
    class: "check" + (focusId === c.id && (status === "failed" || status === "error") ? " focus" : ""),
    id: `check-${c.id}`,
    dataset: { id: c.id, status },
    "aria-labelledby": `name-${c.id}`,
  });
  const head = el("div", { class: "check-head" },
    el("h3", { id: `name-${c.id}`, text: c.name || c.id }),
    el("span", { class: "status", dataset: { status }, text: LABELS[status] || status }));
  li.append(head);
  const since = when(c.since);
  const lines = [];
  if (since) lines.push(`${LABELS[status] || status} since ${since}`);
  if (c.last_run) lines.push(`last checked ${when(c.last_run)}`);
  if (lines.length) li.append(el("p", { class: "muted since", text: lines.join(" · ") }));
  if (c.description) li.append(el("p", { text: c.description }));
  if (c.error) li.append(el("p", { class: "error", text: `Why it could not run: ${c.error}` }));

  if (status === "failed" || status === "error") {
    if (c.fix_html) {
      const fix = el("div", { class: "fix", role: "region", "aria-label": `How to fix: ${c.name}` },
        el("h4", { text: "How to fix it" }));
      const body = el("div", { class: "fix-body" });
      body.innerHTML = c.fix_html;   // sanitized by the tray (markdown.rs)
      fix.append(body);
      li.append(fix);
    }
    const fixed = el("button", {
      class: "primary fixed", type: "button", disabled: busy.has(c.id),
      "aria-describedby": `name-${c.id}`,
      text: busy.has(c.id) ? "Checking…" : "I've fixed it — check again",
    });
    fixed.addEventListener("click", () => recheck(c));
    const later = el("button", { class: "remind", type: "button", "aria-describedby": `name-${c.id}`, text: "Remind me later" });
    later.addEventListener("click", () => remind(c));
    const actions = el("div", { class: "actions" }, fixed, later);
    if (notes.has(c.id)) actions.append(el("span", { class: "note", text: notes.get(c.id) }));
    li.append(actions);
  }
  if (c.evidence !== null && c.evidence !== undefined) {
    li.append(el("details", {},
      el("summary", { text: "Evidence" }),
      el("pre", { class: "evidence", text: JSON.stringify(c.evidence, null, 2) })));
  }
  return li;
}

async function recheck(c) {
  busy.add(c.id);
  notes.delete(c.id);
  await refresh();
  try {
    const r = await invoke("recheck", { check: c.id });
    const now = (r.checks || []).find((x) => x.id === c.id);
    const text = now && now.status === "passed"
      ? `${c.name} passes now. Thank you!`
      : `${c.name} still fails. The steps above may help.`;
    notes.set(c.id, text);
    announce(text);
  } catch (e) {
    notes.set(c.id, `Could not check again: ${e}`);
    announce(`Could not check again: ${e}`);
  } finally {
    busy.delete(c.id);
    await refresh();
  }
}

async function remind(c) {
  try {
    const text = await invoke("remind", { check: c.id });
    notes.set(c.id, text);
    announce(text);
  } catch (e) {
    notes.set(c.id, `Could not snooze: ${e}`);
  }
  await refresh();
}

function render(s) {
  document.body.dataset.level = s.level;
  document.body.dataset.connected = s.unreachable ? "false" : "true";
  document.getElementById("badge").dataset.level = s.level;
  document.getElementById("headline").textContent = s.headline;
  const sub = [];
  if (s.asset && s.asset.name) sub.push(s.asset.name);
  if (s.no_tray) sub.push("Tend opened this window because this desktop shows no tray icons.");
  document.getElementById("subline").textContent = sub.join(" · ");

  const un = document.getElementById("unreachable");
  un.hidden = !s.unreachable;
  document.getElementById("unreachable-why").textContent = s.unreachable || "";

  // Keep keyboard focus on the same control across a re-render.
  const active = document.activeElement;
  const keep = active && active.closest && active.closest(".check")
    ? [active.closest(".check").dataset.id, active.className] : null;
  const list = document.getElementById("checks");
  list.replaceChildren(...s.checks.map(renderCheck));
  if (keep) {
    const again = list.querySelector(`.check[data-id="${CSS.escape(keep[0])}"] .${keep[1].split(" ").pop()}`);
    if (again) again.focus();
  }

  const hist = document.getElementById("history");
  hist.replaceChildren(...s.history.map((h) => el("li", {
    text: `${new Date(h.at).toLocaleString()} — ${h.name || h.id}: ${LABELS[h.from] || h.from || "new"} → ${LABELS[h.to] || h.to}`,
  })));
  document.getElementById("history-empty").hidden = s.history.length > 0;

  const about = document.getElementById("about");
  const rows = [["Tend", s.tray_version]];
  if (s.daemon) rows.push(["Service", `${s.daemon.version} (${s.daemon.platform})`]);
  if (s.policy) {
    rows.push(["Policy", s.policy.name || ""]);
    rows.push(["Policy serial", String(s.policy.serial)]);
    rows.push(["Policy source", s.policy.origin || ""]);
    if (s.policy.problem) rows.push(["Policy problem", s.policy.problem]);
  }
  about.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));

  if (s.focus) showCheck(s.focus);
}

function showCheck(id) {
  focusId = id;
  const li = document.getElementById(`check-${id}`);
  if (li) {
    li.classList.add("focus");
    li.scrollIntoView({ block: "nearest" });
    const b = li.querySelector("button") || li.querySelector("h3");
    if (b) b.focus({ preventScroll: true });
  }
}

async function refresh() {
  render(await invoke("snapshot"));
}

// A link in a fix never navigates this window away.
document.addEventListener("click", (ev) => {
  const a = ev.target.closest && ev.target.closest(".fix a");
  if (!a) return;
  ev.preventDefault();
  const url = a.getAttribute("href");
  if (url && url !== "#") announce(`Open this address in your browser: ${url}`);
});

// Escape or Ctrl+W closes the window (and frees its webview; the tray stays).
document.addEventListener("keydown", (ev) => {
  const ctrlW = (ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "w";
  if (ev.key === "Escape" || ctrlW) {
    ev.preventDefault();
    window.__TAURI__.window.getCurrentWindow().close();
  }
});

listen("state", () => refresh());
listen("focus", (ev) => { if (ev.payload) showCheck(ev.payload); });
refresh();
