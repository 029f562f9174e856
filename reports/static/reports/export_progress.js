// An export's page while its file is written (reports/templates/reports/export.html): reads its status every
// two seconds and shows the rows written; once it is done or failed, loads the page again to show the file or
// the reason.
(function () {
  "use strict";
  const page = document.querySelector("[data-status-url]");
  if (!page) return;
  const url = page.dataset.statusUrl;
  const status = page.querySelector("[data-testid=export-status]");
  const progress = page.querySelector("[data-testid=export-progress]");
  const bar = page.querySelector("[data-testid=export-bar]");

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((data) => {
        if (!data.open) {
          window.location.reload();
          return;
        }
        status.textContent = data.status_label;
        progress.textContent = data.progress;
        if (data.percent !== null) bar.value = data.percent;
        window.setTimeout(poll, 2000);
      })
      .catch(() => window.setTimeout(poll, 5000));
  }
  window.setTimeout(poll, 1000);
})();
