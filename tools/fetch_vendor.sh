#!/usr/bin/env bash
# Fetch the browser assets the rendered book needs (MathJax, require.js and the ipywidgets
# embed manager) from the npm registry at pinned versions into _vendor/static/ (git-ignored), so
# that math and widgets render with no internet. Where npm is absent or fails, _vendor/ stays
# empty and book/_ext/offline_assets.py leaves Jupyter Book's CDN defaults in place.
# axe-core (the accessibility engine tests/browser/test_a11y.py injects) goes to _vendor/axe/,
# outside the book's static files: the test needs it, the reader does not.
set -euo pipefail
cd "$(dirname "$0")/.."
MATHJAX=mathjax@3.2.2
HTML_MANAGER=@jupyter-widgets/html-manager@1.0.7
REQUIREJS=requirejs@2.3.8
AXE=axe-core@4.14.1
stamp="_vendor/.versions"
# LAYOUT names the layout of _vendor/ below; bump it when that changes so existing copies refresh.
LAYOUT=layout4
want="$MATHJAX $HTML_MANAGER $REQUIREJS $AXE $LAYOUT"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch_vendor: npm not found; the book will load MathJax and widgets from their CDNs" >&2
  exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && npm pack --silent "$MATHJAX" "$HTML_MANAGER" "$REQUIREJS" "$AXE" >/dev/null 2>npm.log); then
  echo "fetch_vendor: npm pack failed; the book will use the CDN defaults" >&2; cat "$tmp/npm.log" >&2 || true
  exit 0
fi
rm -rf _vendor && mkdir -p _vendor/static/mathjax _vendor/static/widgets _vendor/axe
for t in "$tmp"/*.tgz; do mkdir -p "$tmp/x" && tar -xzf "$t" -C "$tmp/x" && mv "$tmp/x/package" "$tmp/$(basename "$t" .tgz)" && rm -rf "$tmp/x"; done
cp -r "$tmp"/mathjax-*/es5/. _vendor/static/mathjax/
cp "$tmp"/jupyter-widgets-html-manager-*/dist/embed-amd.js _vendor/static/widgets/
# Two fixes for the offline widget manager, loaded after require.js and before embed-amd.js
# (book/_ext/offline_assets.py):
# 1. The widget CSS references icon fonts by webpack's public path, which embed-amd derives from
#    the AMD module URI "@jupyter-widgets/html-manager/dist/libembed-amd" (page-relative by
#    default): ship the fonts beside embed-amd.js and map that module path there.
# 2. @jupyter-widgets/base typesets labels with the MathJax 2 API (MathJax.Hub.Queue), but the
#    book loads MathJax 3, which has no Hub: every widget with a description then throws. A small
#    Hub.Queue that forwards to MathJax 3's typesetPromise stays on whatever object window.MathJax
#    becomes (MathJax 3 replaces its configuration object when it starts).
cp "$tmp"/jupyter-widgets-html-manager-*/dist/*.{woff2,woff,ttf,eot,svg} _vendor/static/widgets/
cat > _vendor/static/widgets/widgets-compat.js <<'JS'
(function () {
  var here = document.currentScript.src.replace(/[?#].*$/, "").replace(/\/[^\/]*$/, "");
  require.config({paths: {"@jupyter-widgets/html-manager/dist": here}});

  var current = window.MathJax;
  function addHub(mj) {
    if (!mj || typeof mj !== "object" || mj.Hub) return;
    Object.defineProperty(mj, "Hub", {configurable: true, enumerable: false, value: {
      Queue: function () {
        for (var i = 0; i < arguments.length; i++) {
          var job = arguments[i];
          if (Array.isArray(job) && job[0] === "Typeset" && job[2] && window.MathJax.typesetPromise) {
            window.MathJax.typesetPromise([job[2]]).catch(function () {});
          }
        }
      }
    }});
  }
  addHub(current);
  Object.defineProperty(window, "MathJax", {configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = value; addHub(value); }});
})();
JS
cp "$tmp"/requirejs-*/require.js _vendor/static/widgets/
cp "$tmp"/axe-core-*/axe.min.js _vendor/axe/
echo "$want" > "$stamp"
echo "fetch_vendor: $want -> _vendor/"
