// The "Copy" button of the page that shows a new API token once. Without a clipboard the key stays selectable.
document.addEventListener("DOMContentLoaded", function () {
  const button = document.getElementById("copy-api-token");
  if (!button || !navigator.clipboard) return;
  const field = document.getElementById(button.dataset.copyFrom);
  button.hidden = false;
  field.addEventListener("focus", function () { field.select(); });
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = button.dataset.copiedLabel;
    });
  });
});
