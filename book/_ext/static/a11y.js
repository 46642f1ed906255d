/* Accessibility fixes to the theme's page (book/_ext/html_fixes.py explains each; tests/browser
   checks them with axe-core and by tapping the toggles at 390 px). */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  /* 1. The sidebar toggles. pydata-sphinx-theme 0.17 and sphinx-book-theme 1.3 bind only the
     first ".primary-toggle" / ".secondary-toggle" of the page (document.querySelector), which is
     the header's button that the book theme hides; the visible buttons in the article header do
     nothing (pydata-sphinx-theme#2451, sphinx-book-theme#988). A visible toggle forwards its click
     to the bound one, so the theme's own code opens the dialog (phone) or collapses the sidebar
     (desktop). */
  function bindToggles() {
    [".primary-toggle", ".secondary-toggle"].forEach(function (selector) {
      var bound = document.querySelector(selector);
      if (!bound) return;
      document.querySelectorAll(selector).forEach(function (button) {
        if (button === bound) return;
        button.addEventListener("click", function (event) {
          event.preventDefault();
          event.stopPropagation();
          bound.click();
        });
      });
    });
  }

  /* 2. Accessible names that contain the visible label (WCAG 2.5.3): a button or summary with
     visible text takes its name from that text instead of a generic aria-label. */
  function nameFromLabel() {
    document.querySelectorAll('summary[aria-label="Toggle hidden content"], button.toggle-button[aria-label]')
      .forEach(function (el) { el.removeAttribute("aria-label"); });
    document.querySelectorAll("button.search-button-field[aria-label]").forEach(function (el) {
      // visible: "Search  Ctrl+K"
      el.setAttribute("aria-label", "Search Ctrl+K");
    });
    document.querySelectorAll(".theme-switch-button").forEach(function (el) {
      el.setAttribute("aria-label", "Color mode");
    });
  }

  /* 3. The bibliography: sphinxcontrib-bibtex writes role="list" around entries whose role is
     doc-biblioentry (not a list item). Each entry becomes a list item. */
  function bibliography() {
    document.querySelectorAll('[role="list"].citation-list > [role="doc-biblioentry"]').forEach(function (el) {
      el.setAttribute("role", "listitem");
    });
  }

  /* 4. Figures open full size: a figure's image links to its file (a phone shows it scaled to the
     column; the link shows it at its own resolution, zoomable). */
  function figureLinks() {
    document.querySelectorAll("figure img, div.cell_output img").forEach(function (img) {
      if (img.closest("a") || img.closest(".jupyter-widgets")) return;
      var link = document.createElement("a");
      link.href = img.getAttribute("src");
      link.className = "tl-fullsize";
      link.title = "Open the image full size";
      img.parentNode.insertBefore(link, img);
      link.appendChild(img);
    });
  }

  /* 5. Static widgets: in the book a widget's state is a snapshot; moving a slider changes
     nothing. Each control is disabled, named from its label, and a note says where it works.
     Widget images (a snapshot of the picture) get alt text from the cell's figure caption. */
  var NOTE = "Static copy: this control needs a running kernel. Open the chapter in Colab or " +
             "Jupyter (the launch button above) to use it.";

  function staticWidgets(root) {
    root.querySelectorAll(".cell_output .jupyter-widgets, .cell_output .widget-box").forEach(function (box) {
      var area = box.closest(".widget-subarea") || box;
      if (area.dataset.tlStatic) return;
      var controls = area.querySelectorAll("input, select, button, textarea, .slider, [role=slider]");
      if (!controls.length && !area.querySelector("img")) return;
      area.dataset.tlStatic = "1";
      area.querySelectorAll(".widget-inline-hbox, .widget-hbox").forEach(function (row) {
        var label = row.querySelector(".widget-label");
        var text = label ? label.textContent.trim() : "";
        row.querySelectorAll("input, select, textarea, [role=slider], .slider, .ui-slider-handle, .noUi-handle")
          .forEach(function (control) {
            if (text && !control.getAttribute("aria-label")) control.setAttribute("aria-label", text);
          });
      });
      area.querySelectorAll("input, select, button, textarea").forEach(function (control) {
        control.disabled = true;
      });
      area.querySelectorAll("[role=slider], .noUi-handle, .ui-slider-handle").forEach(function (handle) {
        handle.setAttribute("aria-disabled", "true");
        handle.setAttribute("tabindex", "-1");
      });
      area.querySelectorAll(".widget-slider, .slider-container, .noUi-target").forEach(function (slider) {
        slider.setAttribute("inert", "");
      });
      area.querySelectorAll("img").forEach(function (img) {
        if (img.hasAttribute("alt")) return;
        var figure = area.closest(".cell");
        var caption = figure && figure.querySelector("figcaption");
        img.setAttribute("alt", caption ? caption.textContent.replace(/^\s*Figure [\d.]+\s*/, "").trim()
                                        : "A snapshot of the interactive figure");
      });
      if (!area.querySelector(".tl-static-note")) {
        var note = document.createElement("p");
        note.className = "tl-static-note";
        note.textContent = NOTE;
        area.insertBefore(note, area.firstChild);
      }
    });
  }

  function watchWidgets() {
    staticWidgets(document);
    if (!document.querySelector('script[type="application/vnd.jupyter.widget-view+json"]')) return;
    var observer = new MutationObserver(function () { staticWidgets(document); });
    observer.observe(document.body, {childList: true, subtree: true});
  }

  ready(function () {
    bindToggles();
    nameFromLabel();
    bibliography();
    figureLinks();
    watchWidgets();
  });
})();
