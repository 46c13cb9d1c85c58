// Auditor's invitation page: the link's secret is in the URL fragment, which the browser
// never sends to a server (so no log and no Referer holds it). Take it out of the address
// bar and post it once (also when the link is opened on this page already open: only the
// fragment changes); without JavaScript the auditor pastes it into the same form.
"use strict";
(function () {
  var form = document.getElementById("welcome");
  var field = document.getElementById("invite");
  if (!form || !field) return;
  function post() {
    var code = window.location.hash.slice(1);
    if (!code) return;
    window.history.replaceState(null, "", window.location.pathname);
    field.value = code;
    form.submit();
  }
  window.addEventListener("hashchange", post);
  post();
})();
