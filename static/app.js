// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  // Forms that ask before doing something that cannot be undone.
  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  // A barcode scanner types the code and presses Enter: in a scan field, Enter moves to the next
  // field instead of submitting a half-filled form (the last field submits as usual).
  document.querySelectorAll("input[data-scan]").forEach((input) => {
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      const next = document.getElementById(input.dataset.scan);
      if (next) { event.preventDefault(); next.focus(); next.select && next.select(); }
    });
  });
  // Pages that show a running job refresh themselves until it ends.
  const refresh = document.querySelector("[data-refresh-seconds]");
  if (refresh) setTimeout(() => window.location.reload(), 1000 * Number(refresh.dataset.refreshSeconds));
});
