// nphooks dashboard: rows link to their detail page, masked caller fields are fetched
// on click, and the deliveries page refreshes its badges every second.
(function () {
  "use strict";
  document.querySelectorAll("tr.delivery").forEach(function (row) {
    row.addEventListener("click", function (e) {
      if (e.target.tagName !== "A") { window.location = row.dataset.href; }
    });
  });
  var envelope = document.getElementById("envelope");
  document.querySelectorAll(".masked").forEach(function (span) {
    span.addEventListener("click", function () {
      if (span.classList.contains("revealed")) { return; }
      fetch("/api/reveal", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "key=" + encodeURIComponent(envelope.dataset.deliveryKey) + "&field=" + encodeURIComponent(span.dataset.field) +
          "&csrf=" + encodeURIComponent(envelope.dataset.csrf)
      }).then(function (r) {
        if (!r.ok) { throw new Error("reveal refused: " + r.status); }
        return r.json();
      }).then(function (value) {
        span.textContent = value === null ? "(none)" : value;
        span.classList.add("revealed");
      });
    });
  });
  var table = document.getElementById("deliveries");
  if (!table) { return; }
  function refresh() {
    fetch(table.dataset.api).then(function (r) { return r.json(); }).then(function (data) {
      var shown = Array.prototype.map.call(table.querySelectorAll("tr.delivery"), function (r) { return r.dataset.deliveryKey; });
      var fresh = data.rows.map(function (r) { return r.key; });
      if (shown.join("\n") !== fresh.join("\n")) { window.location.reload(); return; }
      data.rows.forEach(function (r) {
        var row = table.querySelector('tr.delivery[data-delivery-key="' + CSS.escape(r.key) + '"]');
        r.badges.forEach(function (b) {
          var badge = row && row.querySelector('.badge[data-integration="' + CSS.escape(b.integration) + '"]');
          if (badge && (badge.dataset.state !== b.state || badge.textContent !== b.label)) {
            badge.dataset.state = b.state;
            badge.textContent = b.label;
          }
        });
      });
    }).catch(function () {}).then(function () { setTimeout(refresh, 1000); });
  }
  setTimeout(refresh, 1000);
})();
