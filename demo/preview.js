/* The preview page's buttons: each forces a state in the widget, or sends a message to the
 * bot, through the widget's preview mode (the script tag's data-preview). */
(function () {
  "use strict";
  document.addEventListener("click", function (e) {
    var button = e.target.closest("button[data-preview]");
    if (!button) return;
    var said = document.getElementById("preview-said");
    if (!window.batonPreview) {
      said.textContent = "The widget is still loading; try again in a moment.";
      return;
    }
    window.batonPreview(button.getAttribute("data-preview"));
    said.textContent = "Showing: " + button.textContent;
  });
})();
