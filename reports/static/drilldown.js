// The per-example view: filters, sorting and details over the JSON embedded in the page (reports/drilldown.py).
// Plain JavaScript, no network. The query string sets the filters (dd_disagree=1, dd_pickwrong=1, dd_label=,
// dd_q=, dd_right=TRIAL, dd_wrong=TRIAL, dd_sort=COLUMN, dd_open=ITEM or "first"), so a link shows one view.
(function () {
  var source = document.getElementById("dd-data"), root = document.getElementById("dd-root");
  if (!source || !root) return;
  var D = JSON.parse(source.textContent), T = D.trials, kind = D.rule.kind, PAGE = 100;
  var ID = 0, INPUT = 1, TARGET = 2, GOLD = 3, CELLS = 4, FOUND = 5;
  D.items.forEach(function (item) {  // expand reports/drilldown.py's _compact: every cell [answer, score] or null
    var cells = item[CELLS];
    for (var k = 0; k < cells.length; k++) {
      var c = cells[k];
      if (typeof c === "number") cells[k] = [item[TARGET], c];
      else if (c && typeof c[0] === "number") cells[k] = [D.answers[c[0]], c[1]];
    }
  });
  var params = new URLSearchParams(location.search);
  var state = {disagree: params.get("dd_disagree") === "1", pickwrong: params.get("dd_pickwrong") === "1",
               label: params.get("dd_label") || "", q: (params.get("dd_q") || "").toLowerCase(),
               right: params.get("dd_right") || "", wrong: params.get("dd_wrong") || "",
               sort: params.get("dd_sort") || "", dir: 1, shown: PAGE, open: {}};
  var pick = T.findIndex(function (t) { return t.role.indexOf("pick") >= 0; });
  var byName = {}; T.forEach(function (t, k) { byName[t.name] = k; });
  var classify = D.task_type === "classification", hasGold = D.items.some(function (it) { return it[GOLD] !== null; });

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var key in attrs || {}) node.setAttribute(key, attrs[key]);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function right(cell) {  // true, false, or null (no answer, or a metric without right/wrong)
    if (!cell || cell[1] === null || kind === "score") return null;
    return kind === "threshold" ? cell[1] >= 0.5 : cell[1] === 1;
  }
  function disagree(item) {
    var seen = {};
    item[CELLS].forEach(function (c) { if (c) seen[kind === "score" ? c[1] : right(c)] = 1; });
    return Object.keys(seen).length > 1;
  }
  function labelOf(item) { return classify ? item[TARGET] : item[GOLD]; }
  function matches(item) {
    if (state.disagree && !disagree(item)) return false;
    if (state.pickwrong && (pick < 0 || right(item[CELLS][pick]) !== false)) return false;
    if (state.label && labelOf(item) !== state.label) return false;
    if (state.right && right(item[CELLS][byName[state.right]]) !== true) return false;
    if (state.wrong && right(item[CELLS][byName[state.wrong]]) !== false) return false;
    if (state.q) {
      var text = [item[ID], item[INPUT], item[TARGET], item[GOLD]].concat(item[CELLS].map(function (c) { return c ? c[0] : ""; }));
      if (text.join("\n").toLowerCase().indexOf(state.q) < 0) return false;
    }
    return true;
  }
  function sortKey(item) {
    var col = state.sort;
    if (col === "id" || col === "input" || col === "gold") return String(item[{id: ID, input: INPUT, gold: TARGET}[col]]).toLowerCase();
    if (col === "document") return String(item[GOLD] || "");
    var cell = item[CELLS][byName[col]];
    return cell ? (cell[1] === null ? -1 : cell[1]) : -2;
  }

  // controls
  var bar = el("div", {"class": "dd-controls"});
  function check(key, text) {
    var box = el("input", {type: "checkbox", id: "dd-" + key});
    box.checked = state[key];
    box.addEventListener("change", function () { state[key] = box.checked; state.shown = PAGE; draw(); });
    var label = el("label", {"for": "dd-" + key}); label.append(box, " " + text); bar.append(label);
  }
  function choose(key, text, options) {
    var select = el("select", {id: "dd-" + key});
    select.append(el("option", {value: ""}, "any"));
    options.forEach(function (o) { var opt = el("option", {value: o}, o); opt.selected = o === state[key]; select.append(opt); });
    select.addEventListener("change", function () { state[key] = select.value; state.shown = PAGE; draw(); });
    var label = el("label", {}); label.append(text + " ", select); bar.append(label);
  }
  check("disagree", kind === "score" ? "trials score differently" : "trials disagree (some right, some wrong)");
  if (pick >= 0 && kind !== "score") check("pickwrong", "the pick (" + T[pick].name + ") is wrong");
  var labels = Array.from(new Set(D.items.map(labelOf).filter(function (v) { return v !== null; }))).sort();
  if (labels.length && (classify || hasGold)) choose("label", classify ? "gold label" : "gold document", labels);
  if (kind !== "score") {
    choose("right", "right in", T.map(function (t) { return t.name; }));
    choose("wrong", "wrong in", T.map(function (t) { return t.name; }));
  }
  var search = el("input", {type: "search", id: "dd-q", placeholder: "search inputs, answers, ids"});
  search.value = state.q;
  search.addEventListener("input", function () { state.q = search.value.toLowerCase(); state.shown = PAGE; draw(); });
  bar.append(search);
  var count = el("p", {"class": "small", id: "dd-count"});

  // how each trial asked: prompting templates and few-shot examples
  var asked = el("details", {"class": "dd-prompts"});
  asked.append(el("summary", {}, "How the prompting trials asked (template and few-shot examples)"));
  T.forEach(function (t) {
    if (!t.prompt) return;
    var p = t.prompt, box = el("div");
    box.append(el("h4", {}, t.name + ": template '" + p.template + "'" + (p.selected_on ? " (picked on " + p.selected_on + ")" : "")));
    box.append(el("pre", {}, p.text));
    if (p.shots.length) {
      var list = el("ol");
      p.shots.forEach(function (s) { list.append(el("li", {}, s[0] + "  \u2192  " + s[1])); });
      box.append(el("p", {"class": "small"}, "Few-shot examples, in this order before every question:"), list);
    } else if (p.shots_note) box.append(el("p", {"class": "small"}, "Few-shot examples: " + p.shots_note + "."));
    asked.append(box);
  });

  var table = el("table", {"class": "dd-table"}), head = el("tr"), body = el("tbody");
  var columns = [["id", "item"], ["input", "input"], ["gold", "gold answer"]].concat(hasGold ? [["document", "gold document"]] : [])
    .concat(T.map(function (t) { return [t.name, t.name + (t.role && t.role !== t.name ? " (" + t.role + ")" : "")]; }));
  columns.forEach(function (c) {
    var th = el("th", {"data-col": c[0], title: "click to sort"}, c[1]);
    th.addEventListener("click", function () { state.dir = state.sort === c[0] ? -state.dir : 1; state.sort = c[0]; draw(); });
    head.append(th);
  });
  table.append(el("thead"), body); table.tHead.append(head);
  var more = el("button", {type: "button", id: "dd-more"}, "show more");
  more.addEventListener("click", function () { state.shown += PAGE; draw(); });
  var scroll = el("div", {"class": "scroll"}); scroll.append(table);
  root.append(bar, count, T.some(function (t) { return t.prompt; }) ? asked : "", scroll, more);

  function details(item) {
    var box = el("div", {"class": "dd-details"});
    box.append(el("p", {}, "Input: " + item[INPUT]), el("p", {}, "Gold answer: " + item[TARGET]));
    if (item[GOLD] !== null) box.append(el("p", {}, "Gold document: " + item[GOLD]));
    T.forEach(function (t, k) {
      var cell = item[CELLS][k], found = item[FOUND][k], r = right(cell);
      var h = el("h4", {"class": r === null ? "" : r ? "right" : "wrong"});
      var mark = r === null ? (cell && cell[1] !== null ? D.rule.display + " " + cell[1] : "") : (r ? "right" : "wrong") +
        (kind === "threshold" ? ", " + D.rule.display + " " + cell[1] : "");
      h.textContent = t.name + ": " + (cell ? cell[0] : "(no answer)") + (mark ? "  [" + mark + "]" : "");
      box.append(h);
      if (!found) return;
      var hit = item[GOLD] !== null && found.some(function (f) { return D.chunks[f[0]][0] === item[GOLD]; });
      box.append(el("p", {"class": "small"}, "Retrieved " + found.length + " chunks; gold document among them: " +
        (item[GOLD] === null ? "unknown (no gold document)" : hit ? "yes" : "no")));
      var list = el("ol", {"class": "dd-chunks"});
      found.forEach(function (f) {
        var chunk = D.chunks[f[0]], li = el("li", {"class": chunk[0] === item[GOLD] ? "gold" : ""});
        li.append(el("strong", {}, "[" + chunk[0] + "]" + (chunk[0] === item[GOLD] ? " gold" : "") + (f[1] ? "" : " (not in the prompt: over the context budget)")),
                  " " + chunk[1]);
        list.append(li);
      });
      box.append(list);
    });
    return box;
  }

  function draw() {
    var rows = D.items.filter(matches);
    if (state.sort) {
      rows = rows.map(function (it, k) { return [sortKey(it), k, it]; });
      rows.sort(function (a, b) { var d = a[0] > b[0] ? 1 : a[0] < b[0] ? -1 : 0; return d ? d * state.dir : a[1] - b[1]; });
      rows = rows.map(function (x) { return x[2]; });
    }
    Array.from(head.cells).forEach(function (th) { th.className = th.dataset.col === state.sort ? (state.dir > 0 ? "asc" : "desc") : ""; });
    var frag = document.createDocumentFragment();
    rows.slice(0, state.shown).forEach(function (item) {
      var tr = el("tr", {"data-item": item[ID]});
      tr.append(el("td", {}, item[ID]), el("td", {"class": "text"}, item[INPUT].slice(0, 160)), el("td", {}, item[TARGET].slice(0, 80)));
      if (hasGold) tr.append(el("td", {}, item[GOLD]));
      item[CELLS].forEach(function (cell) {
        var r = right(cell), td = el("td", {"class": r === null ? "" : r ? "right" : "wrong"});
        td.textContent = cell ? cell[0].slice(0, 80) + (kind === "threshold" || kind === "score" ? " (" + cell[1] + ")" : "") : "";
        tr.append(td);
      });
      tr.addEventListener("click", function () { state.open[item[ID]] = !state.open[item[ID]]; draw(); });
      frag.append(tr);
      if (state.open[item[ID]]) {
        var extra = el("tr", {"class": "dd-open"}), td = el("td", {colspan: columns.length});
        td.append(details(item)); extra.append(td); frag.append(extra);
      }
    });
    body.replaceChildren(frag);
    more.hidden = rows.length <= state.shown;
    count.textContent = "Showing " + Math.min(rows.length, state.shown) + " of " + rows.length + " matching items (" +
      D.items.length + " in this view" + (D.sampled ? ", sampled: " + D.sampled : "") + "). " + D.rule.text + "; click a row for details.";
    root.dataset.matching = rows.length;
    root.dataset.visible = Math.min(rows.length, state.shown);
  }

  var open = params.get("dd_open"), first = open === "first" ? D.items.find(matches) : null;
  if (open) state.open[first ? first[ID] : open] = true;
  root.hidden = false;
  draw();
  root.dataset.readyMs = Math.round(performance.now());
})();
