// The Search page: a small UI over Pagefind's JavaScript API. The index is this site's
// pagefind/ folder, written by `digest site build`: one Pagefind bundle per shard of posts
// by date, listed newest first in pagefind/shards.json (catalog/sitegen/search.py).
// A query asks the newest shard first and shows its results at once; older shards are
// asked only while fewer than a page of results is shown (at most AUTO_SHARDS per step,
// so a word found nowhere costs the same at any size), or when "More results" is
// pressed. Within a shard results are ranked by relevance, across shards newest first.
// Filter counts are loaded after the first results are shown, so they never delay them.
// Each page is indexed in its own language (Russian and English stemmed, Chinese
// segmented), one index per language in a shard's bundle: a shard's instance merges
// them all, so one query finds posts of every language, each index reading it its way.
// Everything from the index (titles, filter values, snippets) is put on the page as text:
// a snippet is rebuilt from its text and its <mark> elements only, so no markup from a
// post can reach the page.
(function () {
  "use strict";
  var root = document.getElementById("digest-search");
  if (!root) {
    return;
  }
  var FILTERS = ["type", "language", "source", "tag"];
  var PAGE = 10;
  var AUTO_SHARDS = 4;
  var MAX_VALUES = 40;
  var form = root.querySelector("form");
  var input = root.querySelector("input[type=search]");
  var status = root.querySelector(".digest-search__status");
  var list = root.querySelector(".digest-search__results");
  var filtersBox = root.querySelector(".digest-search__filters");
  var more = root.querySelector(".digest-search__more");
  var bundle = new URL(root.getAttribute("data-bundle") || "../pagefind/", document.baseURI);
  var siteRoot = new URL("../", bundle);
  var manifest = null;
  var api = null;
  var instances = {};
  var chosen = {};
  var state = null;
  var seq = 0;
  var timer = null;

  function shards() {
    if (!manifest) {
      manifest = fetch(new URL("shards.json", bundle).href).then(function (resp) {
        if (!resp.ok) { throw new Error("shards.json: HTTP " + resp.status); }
        return resp.json();
      }).then(function (m) {
        return m.shards.map(function (s) {
          return { url: new URL(s.path, bundle), posts: s.posts, languages: s.languages || [] };
        });
      });
      manifest.catch(function () { manifest = null; });
    }
    return manifest;
  }

  // One Pagefind instance per shard, made when a query first needs that shard. Pagefind
  // opens the index of the language the page's <html lang> names (the largest when the
  // bundle has none of it), so that attribute is set to the shard's first language while
  // the instance is made; its other languages are merged in. mergeIndex skips a path the
  // primary index starts with, so they are named by an equivalent path ("./" in it).
  function instance(shard) {
    var key = shard.url.href;
    if (!instances[key]) {
      api = api || import(new URL("pagefind.js", shard.url).href);
      instances[key] = api.then(function (pf) {
        var html = document.documentElement;
        var pageLang = html.getAttribute("lang");
        var langs = shard.languages;
        var inst;
        if (langs.length) { html.setAttribute("lang", langs[0]); }
        try {
          inst = pf.createInstance({ basePath: shard.url.pathname });
        } finally {
          if (pageLang === null) { html.removeAttribute("lang"); } else { html.setAttribute("lang", pageLang); }
        }
        return inst.options({ baseUrl: siteRoot.pathname, excerptLength: 30 }).then(function () {
          return Promise.all(langs.slice(1).map(function (lang) {
            // options() reaches the primary index only: the merged ones get theirs here
            return inst.mergeIndex(shard.url.pathname + "./",
              { language: lang, baseUrl: siteRoot.pathname, excerptLength: 30 });
          }));
        }).then(function () { return inst; });
      });
      instances[key].catch(function () { delete instances[key]; });
    }
    return instances[key];
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

  function busy(on) {
    if (on) { root.setAttribute("data-busy", ""); } else { root.removeAttribute("data-busy"); }
  }

  function showStatus(st, stopped) {
    var n = st.results.length;
    var all = st.asked >= st.shards.length;
    if (!n) {
      status.textContent = all ? "No results for “" + st.query + "”"
        : stopped ? "No results for “" + st.query + "” in the " + st.posts.toLocaleString("en") + " newest posts: “More results” searches older ones"
          : "Searching older posts…";
      return;
    }
    status.textContent = n + (all ? "" : "+") + (n === 1 && all ? " result" : " results") + " for “" + st.query + "”"
      + (all ? "" : " (newest first; older posts are searched as you ask for more)");
  }

  // Ask the next shard (newest first); adds its results, ranked by relevance, after the newer ones.
  function askNext(st) {
    var shard = st.shards[st.asked];
    return instance(shard).then(function (inst) {
      return inst.search(st.query, { filters: st.filters }).then(function (found) {
        st.asked += 1;
        st.posts += shard.posts;
        if (found) {
          st.answered.push({ inst: inst, found: found });
          found.results.forEach(function (r) { st.results.push(r); });
        }
      });
    });
  }

  function render(st, upTo) {
    var batch = st.results.slice(st.shown, upTo);
    st.shown += batch.length;
    return Promise.all(batch.map(function (r) { return r.data(); })).then(function (pages) {
      if (st !== state) { return; }
      pages.forEach(function (page) {
        var item = el("li", "digest-search__result");
        var link = el("a", "digest-search__link", (page.meta && page.meta.title) || page.url);
        link.href = new URL(page.url, window.location.href).href;
        item.appendChild(link);
        item.appendChild(snippet(page.excerpt || ""));
        list.appendChild(item);
      });
    });
  }

  // Show results up to `target`, asking older shards (AUTO_SHARDS at most) while too few are known.
  function fill(st, target, alreadyAsked) {
    var stopAt = st.asked - (alreadyAsked || 0) + AUTO_SHARDS;
    busy(true);
    more.hidden = true;
    function step() {
      if (st !== state) { return null; }
      showStatus(st);
      var shows = st.shown < Math.min(target, st.results.length)
        ? render(st, Math.min(target, st.results.length)) : Promise.resolve();
      return shows.then(function () {
        if (st !== state) { return null; }
        if (st.shown < target && st.asked < st.shards.length && st.asked < stopAt) {
          return askNext(st).then(step);
        }
        showStatus(st, true);
        more.hidden = st.shown >= st.results.length && st.asked >= st.shards.length;
        return null;
      });
    }
    return step();
  }

  // Filter counts of the shards that found something: each loads its filter index, then
  // counts its results again (its index chunks are already loaded).
  function loadFilters(st) {
    var found = st.answered.filter(function (a) { return a.found.results.length; });
    return Promise.all(found.map(function (a) {
      return a.inst.filters().then(function () { return a.inst.search(st.query, { filters: st.filters }); });
    })).then(function (founds) {
      if (st !== state) { return; }
      var counts = {};
      founds.forEach(function (found) {
        Object.keys((found && found.filters) || {}).forEach(function (name) {
          var into = counts[name] = counts[name] || {};
          Object.keys(found.filters[name]).forEach(function (v) { into[v] = (into[v] || 0) + found.filters[name][v]; });
        });
      });
      renderFilters(counts);
    });
  }

  function failed(err) {
    busy(false);
    status.textContent = "The search index could not be loaded (" + err + "): build the site with `digest site build`.";
  }

  function run() {
    var query = input.value.trim();
    var mine = ++seq;
    var url = new URL(window.location.href);
    if (query) { url.searchParams.set("q", query); } else { url.searchParams.delete("q"); }
    window.history.replaceState(null, "", url);
    state = null;
    if (!query) {
      list.textContent = "";
      filtersBox.textContent = "";
      status.textContent = "";
      more.hidden = true;
      busy(false);
      return;
    }
    status.textContent = "Searching…";
    busy(true);
    shards().then(function (all) {
      if (mine !== seq) { return null; }
      var st = state = { query: query, filters: selection(), shards: all, asked: 0, posts: 0, answered: [],
        results: [], shown: 0 };
      return askNext(st).then(function () {
        if (st !== state) { return null; }
        list.textContent = "";
        return fill(st, PAGE, 1).then(function () {
          return st === state ? loadFilters(st) : null;
        }).then(function () {
          if (st === state) { busy(false); }
        });
      });
    }).catch(function (err) {
      if (mine === seq) { failed(err); }
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
  more.addEventListener("click", function () {
    var st = state;
    if (!st) { return; }
    fill(st, st.shown + PAGE).then(function () {
      return st === state ? loadFilters(st) : null;
    }).then(function () {
      if (st === state) { busy(false); }
    }).catch(failed);
  });

  var initial = new URLSearchParams(window.location.search).get("q");
  if (initial) {
    input.value = initial;
    run();
  }
})();
