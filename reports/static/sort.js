// Sort a table by a clicked header (progressive enhancement: the table reads fine without it).
document.querySelectorAll("table.sortable th").forEach(function (th) {
  var col = th.cellIndex;  // the column within its own table (the page has several sortable tables)
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0];
    var asc = th.dataset.dir !== "asc";
    th.dataset.dir = asc ? "asc" : "desc";
    var key = function (row) {
      var text = row.cells[col].textContent.trim();
      var num = parseFloat(text.replace(/[$,%]/g, ""));
      return isNaN(num) ? text.toLowerCase() : num;
    };
    Array.from(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x > y ? 1 : x < y ? -1 : 0) * (asc ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
