// The usage upload page: shows the chosen or dropped file, refuses one over the page's limit, and shows
// "Working…" while the server checks and imports it.
document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("usage-upload-form");
  const zone = document.getElementById("drop-zone");
  const input = form.querySelector("input[type=file]");
  const chosen = document.getElementById("chosen-file");
  const maxBytes = Number(form.dataset.maxBytes);
  // unfold's file widget (its app.js) shows the chosen file's name in its text box; a dropped file is shown there too.
  const shown = input.closest("label").querySelector("input[type=text]");

  function describe() {
    const file = input.files[0];
    if (file) shown.value = file.name;
    chosen.textContent = file ? "Selected: " + file.name + " (" + file.size.toLocaleString() + " bytes)" : "";
    if (file && file.size > maxBytes) {
      chosen.textContent += " — larger than the " + maxBytes.toLocaleString() + " bytes this page takes.";
    }
  }
  input.addEventListener("change", describe);
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("is-over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.remove("is-over"); });
  });
  zone.addEventListener("drop", function (event) {
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    const files = new DataTransfer();
    files.items.add(event.dataTransfer.files[0]);
    input.files = files.files;
    describe();
  });
  form.addEventListener("submit", function (event) {
    const file = input.files[0];
    if (!file) { event.preventDefault(); chosen.textContent = "Choose or drop a file first."; return; }
    if (file.size > maxBytes) { event.preventDefault(); describe(); return; }
    document.getElementById("working-name").textContent = file.name;
    form.setAttribute("aria-busy", "true");
    document.getElementById("upload-button").disabled = true;
  });
});
