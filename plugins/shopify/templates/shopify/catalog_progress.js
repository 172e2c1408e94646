// Product Mapping page: while a sync runs, read its progress every few seconds; reload when it ends.
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("catalog-progress");
  if (!box || box.dataset.state !== "running") return;
  const phase = document.getElementById("catalog-phase");
  const bar = document.getElementById("catalog-bar");
  const describe = (p) => {
    if (p.phase === "queued") return "Waiting for a worker…";
    if (p.phase === "exporting") return "Shopify is exporting the variants" + (p.exported ? ` (${p.exported} so far)` : "") + "…";
    if (p.phase === "downloading") return "Reading the export…";
    if (p.phase === "mapping") return `Mapping ${p.processed} of ${p.total} variants…`;
    return "";
  };
  const poll = () => {
    fetch(box.dataset.progressUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((p) => {
        if (p.state !== "running") { window.location.reload(); return; }
        if (phase) phase.textContent = describe(p);
        if (bar && p.total) { bar.max = p.total; bar.value = p.processed; }
        setTimeout(poll, Number(box.dataset.pollMs));
      })
      .catch(() => setTimeout(poll, 4 * Number(box.dataset.pollMs)));
  };
  setTimeout(poll, Number(box.dataset.pollMs));
});
