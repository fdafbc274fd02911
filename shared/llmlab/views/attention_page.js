// The attention page's interactivity: decode the weights, redraw on slider change, focus the
// lines of one token on hover, and (inside an iframe) grow the frame to fit the page.
// Plain JavaScript, no libraries, no network. __UID__ is replaced by the page's element id.
(function () {
  var root = document.getElementById("__UID__");
  if (!root) return;
  var D = JSON.parse(root.querySelector(".attn-data").textContent);
  var raw = atob(D.w), T = D.T, nH = D.heads.length, G = D.geom;
  var W = new Float32Array(raw.length / 2);
  for (var n = 0; n < W.length; n++) {
    W[n] = (raw.charCodeAt(2 * n) | (raw.charCodeAt(2 * n + 1) << 8)) / 65535;
  }
  var li = D.start[0], hi = D.start[1], focus = null;
  var nosink = root.querySelector("input.nosink").checked;
  function w(i, j) { return W[((li * nH + hi) * T + i) * T + j]; }
  function esc(s) {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function drawHeat() {
    var rows = root.querySelectorAll("table.heat tr");
    for (var i = 0; i < T; i++) {
      var cells = rows[i + 1].querySelectorAll("td");
      for (var j = 0; j <= i; j++) {
        var a = w(i, j);
        cells[j].style.background = "rgba(33,102,172," + a.toFixed(3) + ")";
        cells[j].title = D.tokens[i] + " \u2192 " + D.tokens[j] + ": " + a.toFixed(3);
        cells[j].style.outline = (focus === i) ? "1px solid #c33" : "";
      }
    }
  }
  function drawLines() {
    var s = "";
    for (var i = 0; i < T; i++) {
      if (focus !== null && i !== focus) continue;
      for (var j = 0; j <= i; j++) {
        var a = w(i, j);
        if (a < 0.02 || (nosink && j === 0)) continue;
        s += '<line x1="' + G.x0 + '" y1="' + (G.top + i * G.row - 4) + '" x2="' + G.x1 +
          '" y2="' + (G.top + j * G.row - 4) + '" stroke-opacity="' + a.toFixed(3) +
          '" stroke-width="' + (1 + 3 * a).toFixed(2) + '"></line>';
      }
    }
    for (var k = 0; k < T; k++) {
      var y = G.top + k * G.row, t = esc(D.tokens[k]);
      var bold = (focus === k) ? ' font-weight="bold" fill="#c33"' : "";
      s += '<text class="q" data-i="' + k + '" x="' + (G.x0 - 6) + '" y="' + y +
        '" text-anchor="end"' + bold + ">" + t + "</text>";
      s += '<text class="k" x="' + (G.x1 + 6) + '" y="' + y + '">' + t + "</text>";
    }
    var box = root.querySelector(".linebox");
    box.innerHTML = '<svg class="lines" width="' + G.width + '" height="' + G.height + '">' +
      s + "</svg>";
    box.querySelectorAll("text.q").forEach(function (el) {
      el.addEventListener("mouseenter", function () { setFocus(+el.getAttribute("data-i")); });
    });
    box.querySelector("svg").addEventListener("mouseleave", function () { setFocus(null); });
  }
  function setFocus(i) { if (focus !== i) { focus = i; draw(); } }
  function fit() {  // inside an <iframe srcdoc>, make the frame as tall as the page
    var f = null;
    try { f = window.frameElement; } catch (e) { f = null; }
    if (f && D.fitFrame) f.style.height = (root.offsetTop + root.offsetHeight + 16) + "px";
  }
  function draw() {
    root.querySelector(".layer-v").textContent = D.layers[li];
    root.querySelector(".head-v").textContent = D.heads[hi];
    root.querySelector(".lab").textContent = D.labels ? D.labels[li][hi] :
      ("L" + D.layers[li] + " H" + D.heads[hi]);
    drawHeat();
    drawLines();
    fit();
  }
  root.querySelector("input.layer").addEventListener("input", function (e) {
    li = +e.target.value; draw();
  });
  root.querySelector("input.head").addEventListener("input", function (e) {
    hi = +e.target.value; draw();
  });
  root.querySelector("input.nosink").addEventListener("change", function (e) {
    nosink = e.target.checked; draw();
  });
  root.querySelectorAll("table.heat th.row").forEach(function (el) {
    el.addEventListener("mouseenter", function () { setFocus(+el.getAttribute("data-i")); });
    el.addEventListener("mouseleave", function () { setFocus(null); });
  });
  window.addEventListener("resize", fit);
  draw();
})();
