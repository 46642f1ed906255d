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
    // the colour-mode button shows an icon; its icons' titles ("Light", "Dark") are not a label
    document.querySelectorAll(".theme-switch-button i").forEach(function (icon) {
      icon.setAttribute("aria-hidden", "true");
      icon.removeAttribute("title");
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
      area.dataset.tlStatic = "1";
      area.querySelectorAll(".widget-inline-hbox, .widget-hbox").forEach(function (row) {
        var label = row.querySelector(".widget-label");
        var text = label ? label.textContent.trim() : "";
        row.querySelectorAll("input, select, textarea, [role=slider], .ui-slider-handle, .noUi-handle")
          .forEach(function (control) {
            if (text && control.getAttribute("aria-label") !== text) control.setAttribute("aria-label", text);
          });
      });
      area.querySelectorAll("input, select, button, textarea").forEach(function (control) {
        if (!control.disabled) control.disabled = true;
      });
      area.querySelectorAll("[role=slider], .noUi-handle, .ui-slider-handle").forEach(function (handle) {
        if (handle.getAttribute("aria-disabled") !== "true") handle.setAttribute("aria-disabled", "true");
        if (handle.getAttribute("tabindex") !== "-1") handle.setAttribute("tabindex", "-1");
      });
      area.querySelectorAll("img").forEach(function (img) {
        if (img.hasAttribute("alt")) return;
        var cell = area.closest(".cell");
        var alt = cell && cell.querySelector(".tl-widget-alt");  // html_fixes: the cell's mystnb.image.alt
        img.setAttribute("alt", alt ? alt.textContent.trim() : "A snapshot of the interactive figure");
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

  /* 6. A region that scrolls sideways (display math or code wider than a phone's column) can be
     scrolled from the keyboard: it is focusable (tabindex 0) exactly when it overflows. */
  function scrollablesFocusable() {
    document.querySelectorAll('main mjx-container[display="true"], main div.highlight pre, main div.math')
      .forEach(function (el) {
        var scrolls = el.scrollWidth - el.clientWidth > 2 &&
                      /(auto|scroll)/.test(getComputedStyle(el).overflowX);
        if (scrolls && el.getAttribute("tabindex") !== "0") el.setAttribute("tabindex", "0");
        else if (!scrolls && el.getAttribute("tabindex") === "0" && el.tagName === "MJX-CONTAINER")
          el.setAttribute("tabindex", "-1");
      });
  }

  function whenTypeset(fn) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) mj.startup.promise.then(fn);
    else fn();
  }

  ready(function () {
    bindToggles();
    nameFromLabel();
    bibliography();
    figureLinks();
    watchWidgets();
    scrollablesFocusable();
    window.addEventListener("load", function () {
      nameFromLabel();  // again: theme scripts that run late may restore the icons' titles
      whenTypeset(scrollablesFocusable);
    });
    window.addEventListener("resize", scrollablesFocusable);
  });
})();
