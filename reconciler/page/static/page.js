(function () {
  "use strict";
  // Filters the model table without a server round trip. Data comes from the rows'
  // data-* attributes, never from text inserted into this script.
  var filters = document.getElementById("model-filters");
  var table = document.getElementById("model-list");
  if (!filters || !table) {
    return;
  }
  var tabs = Array.prototype.slice.call(filters.querySelectorAll("[data-model-type-tab]"));
  var provider = document.getElementById("provider-filter");
  var rows = Array.prototype.slice.call(table.querySelectorAll("tr[data-model-type]"));
  var count = document.getElementById("model-count");
  var empty = document.getElementById("model-list-empty");
  var current = "all";

  function update() {
    var wanted = provider.value;
    var shown = 0;
    rows.forEach(function (row) {
      var visible = (current === "all" || row.getAttribute("data-model-type") === current) &&
        (wanted === "all" || row.getAttribute("data-provider") === wanted);
      row.hidden = !visible;
      if (visible) {
        shown += 1;
      }
    });
    tabs.forEach(function (tab) {
      var selected = tab.getAttribute("data-model-type-tab") === current;
      tab.setAttribute("aria-selected", selected ? "true" : "false");
      tab.tabIndex = selected ? 0 : -1;
    });
    count.textContent = shown + " of " + rows.length + " models shown";
    empty.hidden = shown !== 0;
  }

  tabs.forEach(function (tab) {
    tab.addEventListener("click", function () {
      current = tab.getAttribute("data-model-type-tab");
      update();
    });
  });
  provider.addEventListener("change", update);
  filters.hidden = false;
  update();
})();
