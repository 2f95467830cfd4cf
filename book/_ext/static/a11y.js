// Accessible names for the ipywidgets of the book's pages (see site_fixes.py).
// ipywidgets 8 draws a slider's handle as <div role="slider"> beside a visible <label> that
// is not tied to it, so screen readers announce an unnamed slider: the handle is named after
// its widget's label. Widgets are drawn after the page loads, hence the observer.
(function () {
  "use strict";
  function nameSliders() {
    document.querySelectorAll(".widget-slider, .jupyter-widget-slider").forEach(function (widget) {
      var label = widget.querySelector(".widget-label");
      var text = label ? label.textContent.trim() : "";
      widget.querySelectorAll('[role="slider"]').forEach(function (handle) {
        if (!handle.hasAttribute("aria-label") && !handle.hasAttribute("aria-labelledby")) {
          handle.setAttribute("aria-label", text || "slider");
        }
      });
    });
  }
  new MutationObserver(nameSliders).observe(document.documentElement,
                                            { childList: true, subtree: true });
  document.addEventListener("DOMContentLoaded", nameSliders);
})();
