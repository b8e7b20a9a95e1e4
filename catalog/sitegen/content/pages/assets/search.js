// The Search page: Pagefind's UI (served from this site's pagefind/ folder), started
// with the query from ?q= so the home page's search box and shared links land here.
(function () {
  if (typeof PagefindUI === "undefined") {
    document.getElementById("digest-search").textContent =
      "The search index is missing: build the site with `digest site build`.";
    return;
  }
  var ui = new PagefindUI({
    element: "#digest-search",
    bundlePath: "../pagefind/",
    showImages: false,
    showSubResults: false,
    resetStyles: false,
    pageSize: 10,
    translations: { placeholder: "Search posts, papers and tags (ru, en, 中文)" }
  });
  var query = new URLSearchParams(window.location.search).get("q");
  if (query) {
    ui.triggerSearch(query);
  }
})();
