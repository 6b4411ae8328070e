// The console's only script, and an optional one: every page works without it. It adds a
// "Copy" button to values shown once, and asks before a form marked data-confirm is sent.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  for (const secret of document.querySelectorAll("code.secret")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(secret.textContent.trim());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy it";
      }
    });
    secret.after(" ", button);
  }
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
