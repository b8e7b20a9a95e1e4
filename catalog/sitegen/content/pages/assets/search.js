// The Search page: a small UI over Pagefind's JavaScript API (the index is this site's
// pagefind/ folder, written by `digest site build`). Everything from the index (titles,
// filter values, snippets) is put on the page as text: a snippet is rebuilt from its
// text and its <mark> elements only, so no markup from a post can reach the page.
(function () {
  "use strict";
  var root = document.getElementById("digest-search");
  if (!root) {
    return;
  }
  var FILTERS = ["type", "language", "source", "tag"];
  var PAGE = 10;
  var MAX_VALUES = 40;
  var form = root.querySelector("form");
  var input = root.querySelector("input[type=search]");
  var status = root.querySelector(".digest-search__status");
  var list = root.querySelector(".digest-search__results");
  var filtersBox = root.querySelector(".digest-search__filters");
  var more = root.querySelector(".digest-search__more");
  var bundle = new URL(root.getAttribute("data-bundle") || "../pagefind/", document.baseURI);
  var siteRoot = new URL("../", bundle);
  var engine = null;
  var chosen = {};
  var current = null;
  var shown = 0;
  var seq = 0;
  var timer = null;

  function load() {
    if (!engine) {
      engine = import(new URL("pagefind.js", bundle).href).then(function (pf) {
        // filters() loads the filter index, without which a search reports no filter counts
        return pf.options({ baseUrl: siteRoot.pathname, excerptLength: 30 })
          .then(function () { return pf.filters(); })
          .then(function () { return pf; });
      });
    }
    return engine;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function snippet(html) {
    // parsed in an inert document (no script runs, nothing loads), then copied as text and marks
    var doc = new DOMParser().parseFromString("<body>" + html + "</body>", "text/html");
    var p = el("p", "digest-search__excerpt");
    doc.body.childNodes.forEach(function (node) {
      if (node.nodeName === "MARK") {
        p.appendChild(el("mark", null, node.textContent));
      } else {
        p.appendChild(document.createTextNode(node.textContent));
      }
    });
    return p;
  }

  function selection() {
    var out = {};
    Object.keys(chosen).forEach(function (name) {
      var values = Object.keys(chosen[name]).filter(function (v) { return chosen[name][v]; });
      if (values.length) { out[name] = { any: values }; }
    });
    return out;
  }

  function renderFilters(counts) {
    filtersBox.textContent = "";
    FILTERS.forEach(function (name) {
      var values = Object.assign({}, counts[name] || {});
      Object.keys(chosen[name] || {}).forEach(function (v) {
        if (chosen[name][v] && !(v in values)) { values[v] = 0; }
      });
      var keys = Object.keys(values).filter(function (v) { return values[v] > 0 || (chosen[name] || {})[v]; });
      if (!keys.length) { return; }
      keys.sort(function (a, b) { return values[b] - values[a] || a.localeCompare(b); });
      var box = el("details", "digest-search__filter");
      box.open = name !== "tag" && name !== "source";
      box.appendChild(el("summary", null, name));
      keys.slice(0, MAX_VALUES).forEach(function (value) {
        var label = el("label");
        var box2 = el("input");
        box2.type = "checkbox";
        box2.checked = Boolean((chosen[name] || {})[value]);
        box2.addEventListener("change", function () {
          (chosen[name] = chosen[name] || {})[value] = box2.checked;
          run();
        });
        label.appendChild(box2);
        label.appendChild(document.createTextNode(" " + value + " (" + values[value] + ")"));
        box.appendChild(label);
      });
      filtersBox.appendChild(box);
    });
  }

  function showMore() {
    var mine = seq;
    var batch = current.results.slice(shown, shown + PAGE);
    shown += batch.length;
    return Promise.all(batch.map(function (r) { return r.data(); })).then(function (pages) {
      if (mine !== seq) { return; }
      pages.forEach(function (page) {
        var item = el("li", "digest-search__result");
        var link = el("a", "digest-search__link", (page.meta && page.meta.title) || page.url);
        link.href = new URL(page.url, window.location.href).href;
        item.appendChild(link);
        item.appendChild(snippet(page.excerpt || ""));
        list.appendChild(item);
      });
      more.hidden = shown >= current.results.length;
    });
  }

  function run() {
    var query = input.value.trim();
    var mine = ++seq;
    var url = new URL(window.location.href);
    if (query) { url.searchParams.set("q", query); } else { url.searchParams.delete("q"); }
    window.history.replaceState(null, "", url);
    if (!query) {
      list.textContent = "";
      filtersBox.textContent = "";
      status.textContent = "";
      more.hidden = true;
      return;
    }
    status.textContent = "Searching…";
    load().then(function (pf) {
      return pf.search(query, { filters: selection() });
    }).then(function (found) {
      if (mine !== seq || !found) { return; }
      current = found;
      shown = 0;
      list.textContent = "";
      var n = found.results.length;
      status.textContent = n ? n + (n === 1 ? " result" : " results") + " for “" + query + "”"
        : "No results for “" + query + "”";
      renderFilters(found.filters || {});
      return showMore();
    }).catch(function (err) {
      status.textContent = "The search index could not be loaded (" + err + "): build the site with `digest site build`.";
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    window.clearTimeout(timer);
    run();
  });
  input.addEventListener("input", function () {
    window.clearTimeout(timer);
    timer = window.setTimeout(run, 200);
  });
  more.addEventListener("click", showMore);

  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) {
    input.value = initial;
    run();
  }
})();
