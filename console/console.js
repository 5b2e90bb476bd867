// The identity-map operator console: one dependency-free module served by the service (ADR 0016).
// Every identifier is put on the page as text (never as HTML): they come from sensors and inventories.
// The bearer token lives in sessionStorage and the Authorization header only: never in a URL or a log.

const TOKEN_KEY = "identity-map.token";
const main = document.getElementById("main");
const banner = document.getElementById("banner");
let session = { role: "unknown", actor: "", auth: false };
/** Counts navigations; a screen whose data arrives after a newer navigation began is not drawn. */
let routeSeq = 0;

/** Builds an element: h("a", { href: "#" }, "text", child). Strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Shows a message; a sticky one survives the next screen change (an action that moves to another device). */
function show(message, kind = "error", sticky = false) {
  banner.textContent = message;
  banner.className = kind;
  banner.hidden = false;
  banner.dataset.testid = kind === "error" ? "error" : "notice";
  banner.dataset.sticky = sticky ? "1" : "";
}

function clearBanner() {
  banner.hidden = true;
  banner.textContent = "";
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** One call to the service's API, with the token when signed in; a 401 asks for a token. */
async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const json = text ? JSON.parse(text) : {};
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    await signIn();
    throw new ApiError(401, json);
  }
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

/** Explains a refusal in the operator's words: a reader is told which role acts. */
function refusal(e) {
  if (!(e instanceof ApiError)) return String(e);
  if (e.status === 403) return `Refused: your token has the ${session.role} role; this action needs the writer role.`;
  const field = e.body?.error?.field ? ` (${e.body.error.field})` : "";
  return `${e.body?.error?.code ?? "error"}: ${e.message}${field}`;
}

async function signIn() {
  const dialog = document.getElementById("sign-in");
  const input = document.getElementById("token");
  input.value = "";
  dialog.showModal();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (input.value.trim() !== "") sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  await loadSession();
}

async function loadSession() {
  try {
    session = await api("GET", "/v1/session");
  } catch {
    return;
  }
  const who = document.getElementById("who");
  who.textContent = session.auth ? `${session.actor} · ${session.role}` : "auth off · writer";
  who.dataset.role = session.role;
  document.getElementById("sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
}

/** Asks before an action that changes the map; resolves true on Confirm. */
function confirmAction(title, ...body) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-body").replaceChildren(...body);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) =>
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }),
  );
}

/** Moves to another screen; the page is not ready until that screen has rendered. */
function navigate(hash) {
  document.body.dataset.ready = "false";
  location.hash = hash;
}

const when = (ms) => (ms ? new Date(ms).toISOString().replace(".000Z", "Z") : "");
const deviceLink = (id) => h("a", { href: `#/device/${encodeURIComponent(id)}`, class: "mono" }, id);

// ---- search -----------------------------------------------------------------------------------

/**
 * The query parameters an identifier may be, in the order they are tried: a MAC in any notation, an
 * IP (with `partition:` in front or a partition given), else an Armis id, a NetBox id or a device id.
 */
function interpretations(text, kind, partition) {
  const v = text.trim();
  if (kind !== "any") return [{ [kind]: v, ...(kind === "ip" && partition ? { partition } : {}) }];
  const out = [];
  const hex = v.replace(/[-:.\s]/g, "");
  if (/^[0-9a-fA-F]{12}$/.test(hex)) out.push({ mac: v });
  const ipv4 = /^(?:(.+):)?(\d{1,3}(?:\.\d{1,3}){3})(?:\/32)?$/.exec(v);
  if (ipv4) out.push({ ip: ipv4[2], ...(ipv4[1] || partition ? { partition: ipv4[1] || partition } : {}) });
  else if (v.includes(":") && /^[0-9a-fA-F:]+(?:\/128)?$/.test(v)) out.push({ ip: v });
  out.push({ device_id: v }, { armis_id: v }, { netbox_id: v });
  return out;
}

async function search(text, kind, partition, at) {
  for (const q of interpretations(text, kind, partition)) {
    const params = new URLSearchParams(q);
    if (at) params.set("at", at);
    try {
      const r = await api("GET", `/v1/canonical-devices/lookup?${params}`);
      return { query: q, result: r };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) continue;
      if (e instanceof ApiError && e.status === 409) return { query: q, ambiguous: e.body.error.candidates ?? [] };
      throw e;
    }
  }
  return null;
}

function renderSearch(params) {
  const q = params.get("q") ?? "";
  const kind = params.get("kind") ?? "any";
  const at = params.get("at") ?? "";
  const partition = params.get("partition") ?? "";
  const form = h(
    "form",
    { class: "inline", id: "search-form" },
    h("label", {}, "Identifier (MAC in any format, IP, partition:IP, Armis id, NetBox id, device id)",
      h("input", { name: "q", value: q, class: "wide", "data-testid": "search-input", required: true })),
    h("label", {}, "Kind",
      h("select", { name: "kind" },
        ["any", "mac", "ip", "armis_id", "netbox_id", "device_id"].map((k) =>
          h("option", { value: k, selected: k === kind }, k === "any" ? "any (guess)" : k)))),
    h("label", {}, "Partition", h("input", { name: "partition", value: partition, placeholder: "optional" })),
    h("label", {}, "As of (UTC, optional)",
      h("input", { name: "at", type: "datetime-local", step: "1", value: at, "data-testid": "as-of-input" })),
    h("button", { type: "submit", "data-testid": "search-button" }, "Search"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const next = new URLSearchParams();
    for (const k of ["q", "kind", "partition", "at"]) if (f.get(k)) next.set(k, String(f.get(k)));
    location.hash = `#/search?${next}`;
  });
  const results = h("div", { id: "search-results" });
  main.replaceChildren(h("section", {}, h("h2", {}, "Find a device"), form), results);
  if (!q) return;
  const atIso = at ? new Date(`${at}Z`).toISOString() : "";
  results.append(h("p", { class: "muted" }, "Searching…"));
  search(q, kind, partition, atIso).then(
    (found) => results.replaceChildren(searchResult(q, found, atIso)),
    (e) => results.replaceChildren(h("section", {}, refusal(e))),
  );
}

function searchResult(q, found, atIso) {
  if (!found) return h("section", { "data-testid": "no-match" }, `No device ${atIso ? `held ${q} at ${atIso}` : `matches ${q}`}.`);
  const asked = Object.entries(found.query).map(([k, v]) => `${k}=${v}`).join(" ");
  if (found.ambiguous)
    return h("section", { "data-testid": "ambiguous" }, h("h2", {}, `${asked} is a shared identifier (quarantined)`),
      h("p", {}, "It names several devices: "), h("ul", {}, found.ambiguous.map((id) => h("li", {}, deviceLink(id)))));
  const r = found.result;
  if (r.at)
    return h("section", { "data-testid": "as-of-result" }, h("h2", {}, `Who held ${asked} at ${r.at}`),
      h("dl", {},
        h("dt", {}, "Device"), h("dd", {}, deviceLink(r.device_id)),
        h("dt", {}, "Held since"), h("dd", {}, when(r.since_unix_millis)),
        h("dt", {}, "Until"), h("dd", {}, r.until_unix_millis ? when(r.until_unix_millis) : "still, as far as the trail says"),
        h("dt", {}, "Bound by"), h("dd", {}, `${r.reason} (${r.actor})`)));
  const id = r.record.canonical_device_id;
  return h("section", { "data-testid": "search-result" }, h("h2", {}, `Found by ${r.matched_key.kind} ${r.matched_key.value}`),
    h("dl", {},
      h("dt", {}, "Device"), h("dd", {}, deviceLink(id), r.record.provisional ? h("span", { class: "badge warn" }, "provisional") : null),
      h("dt", {}, "Partition"), h("dd", {}, r.record.partition || "—"),
      h("dt", {}, "Identity"), h("dd", { class: "mono" }, Object.entries(r.record.attributes).map(([k, v]) => `${k}=${v}`).join("  ") || "—")));
}

// ---- device page ------------------------------------------------------------------------------

async function renderDevice(id, seq = routeSeq) {
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let d;
  let history;
  try {
    [d, history] = await Promise.all([
      api("GET", `/v1/canonical-devices/${encodeURIComponent(id)}/detail`),
      api("GET", `/v1/canonical-devices/${encodeURIComponent(id)}/history?limit=100`),
    ]);
  } catch (e) {
    if (seq === routeSeq) main.replaceChildren(h("section", {}, refusal(e)));
    return;
  }
  // A later navigation started while this one waited: it renders, this one does not.
  if (seq !== routeSeq) return;
  const canonical = d.record.canonical_device_id;
  document.body.dataset.device = canonical;
  const head = h("section", { "data-testid": "device-record" },
    h("h2", {}, "Device ", h("span", { class: "mono", "data-testid": "device-id" }, canonical),
      d.provisional ? h("span", { class: "badge warn", "data-testid": "provisional" }, "provisional") : null),
    d.redirected_to ? h("p", {}, `${d.device_id} was merged: it redirects to `, deviceLink(d.redirected_to)) : null,
    h("dl", {},
      h("dt", {}, "Partition"), h("dd", {}, d.record.partition || "—"),
      h("dt", {}, "Identity"), h("dd", { class: "mono" }, Object.entries(d.record.attributes).map(([k, v]) => `${k}=${v}`).join("  ") || "—"),
      h("dt", {}, "Updated"), h("dd", {}, when(d.record.updated_at_unix_millis)),
      h("dt", {}, "Redirects in"), h("dd", { "data-testid": "redirects-in" }, d.redirects_in.length ? d.redirects_in.flatMap((r) => [deviceLink(r), " "]) : "none"),
      h("dt", {}, "Latest sighting"), h("dd", {}, d.latest_sighting
        ? `${d.latest_sighting.source || "?"} at ${d.latest_sighting.ip || "no ip"} (${when(d.latest_sighting.last_seen_unix_millis)})` : "—")));

  const keyRows = d.keys.map((k) => {
    const isOwn = k.kind === "device-id" && k.value === canonical;
    return h("tr", { dataset: { kind: k.kind, value: k.value } },
      h("td", {}, isOwn ? "" : h("input", { type: "checkbox", "aria-label": `split ${k.kind} ${k.value}`, dataset: { kind: k.kind, value: k.value } })),
      h("td", {}, k.kind), h("td", { class: "mono" }, k.value),
      h("td", {}, k.pinned ? h("span", { class: "badge pin" }, `pinned by ${k.pinned.actor}`) : ""),
      h("td", {}, k.pinned
        ? h("button", { class: "small secondary", type: "button", onclick: () => unpin(canonical, k) }, "Unpin")
        : h("button", { class: "small secondary", type: "button", onclick: () => pin(canonical, k) }, "Pin")));
  });
  const keys = h("section", { "data-testid": "device-keys" }, h("h2", {}, `Keys (${d.keys.length})`),
    h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "split"), h("th", {}, "kind"), h("th", {}, "value"), h("th", {}, "pin"), h("th", {}, ""))),
      h("tbody", {}, keyRows)));

  const mergeInput = h("input", { name: "into", placeholder: "device id", "data-testid": "merge-into", required: true });
  const actions = h("section", { "data-testid": "device-actions" }, h("h2", {}, "Correct"),
    h("form", { class: "inline", onsubmit: (ev) => { ev.preventDefault(); merge(canonical, mergeInput.value.trim()); } },
      h("label", {}, "Merge this device into", mergeInput),
      h("button", { type: "submit", "data-testid": "merge-button" }, "Merge…")),
    h("p", {}),
    h("button", { type: "button", "data-testid": "split-button", onclick: () => split(canonical, keys) }, "Split the checked keys into a new device…"));

  const explanation = h("section", { "data-testid": "explanation" }, h("h2", {}, "Why: how the rules decide its latest sighting"),
    d.explanation?.trace ? traceView(d.explanation) : h("p", { class: "muted" }, "No sighting recorded for this device."));

  const timeline = h("section", { "data-testid": "timeline" }, h("h2", {}, "Timeline"),
    h("table", {}, h("thead", {}, h("tr", {}, ["when", "reason", "key", "from", "to", "who"].map((c) => h("th", {}, c)))),
      h("tbody", {}, history.entries.map((e) => h("tr", {},
        h("td", {}, when(e.at_unix_millis)), h("td", {}, e.reason),
        h("td", { class: "mono" }, `${e.key.kind} ${e.key.value}`),
        h("td", {}, e.from_device_id ? deviceLink(e.from_device_id) : "—"),
        h("td", {}, e.to_device_id ? deviceLink(e.to_device_id) : "—"),
        h("td", {}, e.actor))))));
  main.replaceChildren(head, h("div", { class: "grid" }, keys, actions), explanation, timeline);
}

function traceView(r) {
  const t = r.trace;
  return h("div", {},
    h("p", {}, "Rule: ", h("strong", {}, t.rule), ` → ${r.canonical_device_id ?? "no device"}`, t.own_id ? ` (own id: ${t.own_id})` : ""),
    h("ul", { class: "trace" }, t.candidates.map((c) => h("li", {},
      `${c.key.kind} ${c.key.value} names `, deviceLink(c.device_id), `: ${c.verdict}`,
      c.differing ? ` (${c.differing.map((x) => `${x.kind} ${x.update} ≠ ${x.device}`).join(", ")})` : ""))),
    t.provisional ? h("p", {}, `Provisional: ${t.provisional.action} ${t.provisional.device_id}`) : null,
    t.quarantined_ignored?.length ? h("p", {}, `Ignored as shared: ${t.quarantined_ignored.map((k) => k.value).join(", ")}`) : null);
}

async function act(run, success, then) {
  clearBanner();
  try {
    const r = await run();
    show(success(r), "info", true);
    await then(r);
  } catch (e) {
    show(refusal(e));
  }
}

async function merge(id, into) {
  if (!into) return show("into: name the device to merge into");
  const ok = await confirmAction("Merge devices",
    h("p", {}, "Every key of ", h("code", {}, id), " moves to ", h("code", {}, into), ", pinned there, and ",
      h("code", {}, id), " redirects to it. Sightings will not undo this; a split will."));
  if (!ok) return;
  await act(() => api("POST", `/v1/canonical-devices/${encodeURIComponent(id)}/merge`, { into }),
    (r) => `Merged ${id} into ${r.device_id}: ${r.moved_keys.length} keys moved.`,
    (r) => navigate(`#/device/${encodeURIComponent(r.device_id)}`));
}

async function split(id, keysSection) {
  const keys = [...keysSection.querySelectorAll("input[type=checkbox]:checked")].map((c) => ({ kind: c.dataset.kind, value: c.dataset.value }));
  if (keys.length === 0) return show("keys: check the keys to split off");
  const ok = await confirmAction("Split device",
    h("p", {}, "These keys leave ", h("code", {}, id), " and become a new device, pinned there:"),
    h("ul", {}, keys.map((k) => h("li", { class: "mono" }, `${k.kind} ${k.value}`))));
  if (!ok) return;
  await act(() => api("POST", `/v1/canonical-devices/${encodeURIComponent(id)}/split`, { keys }),
    (r) => `Split ${r.moved_keys.length} keys off ${id} into ${r.device_id}.`,
    (r) => navigate(`#/device/${encodeURIComponent(r.device_id)}`));
}

const pinPath = (id, k) => `/v1/canonical-devices/${encodeURIComponent(id)}/pins/${encodeURIComponent(k.kind)}/${encodeURIComponent(k.value)}`;

async function pin(id, k) {
  const ok = await confirmAction("Pin key", h("p", {}, `Pin ${k.kind} ${k.value} to ${id}: no sighting moves it until unpinned; a stronger conflicting one is refused and listed under Pin conflicts.`));
  if (!ok) return;
  await act(() => api("PUT", pinPath(id, k)), () => `Pinned ${k.kind} ${k.value}.`, () => renderDevice(id));
}

async function unpin(id, k) {
  const ok = await confirmAction("Unpin key", h("p", {}, `Lift the pin on ${k.kind} ${k.value}: the resolution rules apply to it again.`));
  if (!ok) return;
  await act(() => api("DELETE", pinPath(id, k)), () => `Unpinned ${k.kind} ${k.value}.`, () => renderDevice(id));
}

// ---- quarantine and pin conflicts ---------------------------------------------------------------

async function renderQuarantine(seq = routeSeq) {
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let r;
  try {
    r = await api("GET", "/v1/identifiers/quarantined");
  } catch (e) {
    if (seq === routeSeq) main.replaceChildren(h("section", {}, refusal(e)));
    return;
  }
  // A later navigation started while this one waited: it renders, this one does not.
  if (seq !== routeSeq) return;
  const rows = r.identifiers.map((q) => h("tr", {},
    h("td", { class: "mono" }, `${q.kind} ${q.value}`), h("td", {}, when(q.quarantined_since_unix_millis)),
    h("td", {}, q.candidates.flatMap((c) => [deviceLink(c), " "])),
    h("td", {}, h("button", { class: "small danger", type: "button", onclick: () => release(q) }, "Release…"))));
  main.replaceChildren(h("section", { "data-testid": "quarantined" }, h("h2", {}, `Quarantined identifiers (${r.identifiers.length})`),
    h("p", { class: "muted" }, "Shared identifiers (docks, dongles, cloned VMs) link and merge nothing until released."),
    rows.length ? h("table", {}, h("thead", {}, h("tr", {}, ["identifier", "since", "candidates", ""].map((c) => h("th", {}, c)))), h("tbody", {}, rows))
      : h("p", {}, "None.")));
}

async function release(q) {
  const ok = await confirmAction("Release identifier", h("p", {}, `Release ${q.kind} ${q.value}: the next report binds it afresh.`));
  if (!ok) return;
  await act(() => api("DELETE", `/v1/identifiers/quarantined/${encodeURIComponent(q.kind)}/${encodeURIComponent(q.value)}`),
    () => `Released ${q.value}.`, () => renderQuarantine());
}

async function renderConflicts(seq = routeSeq) {
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let r;
  try {
    r = await api("GET", "/v1/pins/conflicts?limit=200");
  } catch (e) {
    if (seq === routeSeq) main.replaceChildren(h("section", {}, refusal(e)));
    return;
  }
  // A later navigation started while this one waited: it renders, this one does not.
  if (seq !== routeSeq) return;
  main.replaceChildren(h("section", { "data-testid": "pin-conflicts" }, h("h2", {}, `Pin conflicts (${r.conflicts.length})`),
    h("p", { class: "muted" }, "Sightings that asserted a pinned key for another device, refused. Settle each: unpin (let the rules decide) or correct the source."),
    r.conflicts.length
      ? h("table", {}, h("thead", {}, h("tr", {}, ["when", "key", "pinned to", "sighting said", "reported by"].map((c) => h("th", {}, c)))),
          h("tbody", {}, r.conflicts.map((c) => h("tr", {}, h("td", {}, when(c.at_unix_millis)), h("td", { class: "mono" }, `${c.key.kind} ${c.key.value}`),
            h("td", {}, c.from_device_id ? deviceLink(c.from_device_id) : "—"), h("td", {}, c.to_device_id ? deviceLink(c.to_device_id) : "—"), h("td", {}, c.actor)))))
      : h("p", {}, "None.")));
}

// ---- routing ----------------------------------------------------------------------------------

async function route() {
  const seq = ++routeSeq;
  document.body.dataset.ready = "false";
  if (banner.dataset.sticky === "1") banner.dataset.sticky = "";
  else clearBanner();
  const hash = location.hash.replace(/^#/, "") || "/search";
  const [path, query = ""] = hash.split("?");
  const screen = path.split("/")[1] ?? "search";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === screen);
  document.body.dataset.screen = screen;
  document.body.dataset.device = "";
  if (screen === "device") await renderDevice(decodeURIComponent(path.slice("/device/".length)), seq);
  else if (screen === "quarantine") await renderQuarantine(seq);
  else if (screen === "conflicts") await renderConflicts(seq);
  else renderSearch(new URLSearchParams(query));
  if (seq === routeSeq) document.body.dataset.ready = "true";
}

document.getElementById("sign-out").addEventListener("click", async () => {
  sessionStorage.removeItem(TOKEN_KEY);
  const hash = location.hash;
  await signIn();
  // A navigation made meanwhile has drawn its screen already; drawing it again would drop what was typed since.
  if (location.hash === hash) await route();
});
window.addEventListener("hashchange", () => {
  document.body.dataset.ready = "false";
  route();
});
await loadSession();
await route();
