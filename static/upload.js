// Import page: send the file with XMLHttpRequest to show upload progress, then go to the
// import's job page (or show a refusal in place). Without JavaScript the form posts normally.
"use strict";
(function () {
  var self = document.currentScript ? document.currentScript.src : "/static/upload.js";
  var form = document.getElementById("import-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var bar = document.getElementById("import-progress");
  var text = document.getElementById("import-progress-text");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.responseType = "document";
    bar.hidden = false;
    bar.value = 0;
    button.disabled = true;
    text.textContent = "Sending…";
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) return;
      var pct = Math.round((100 * e.loaded) / e.total);
      bar.value = pct;
      bar.textContent = pct + "%";
      text.textContent = pct < 100 ? "Sending: " + pct + "%" : "Sent; starting the import…";
    });
    xhr.addEventListener("load", function () {
      if (xhr.status === 200 && /\/jobs\/[0-9]+$/.test(xhr.responseURL)) {
        window.location.assign(xhr.responseURL);
        return;
      }
      var fresh = xhr.response && xhr.response.querySelector("main");
      if (!fresh) {
        text.textContent = "The server answered " + xhr.status + "; reload the page.";
        button.disabled = false;
        return;
      }
      document.querySelector("main").replaceWith(document.importNode(fresh, true));
      // the new form needs the same behaviour
      var script = document.createElement("script");
      script.src = self;
      document.body.appendChild(script);
    });
    xhr.addEventListener("error", function () {
      text.textContent = "The upload failed; check the connection and try again.";
      button.disabled = false;
    });
    xhr.send(new FormData(form));
  });
})();
