// Auditor's invitation page: the link's secret is in the URL fragment, which the browser
// never sends to a server (so no log and no Referer holds it). Take it out of the address
// bar and post it once; without JavaScript the auditor pastes it into the same form.
"use strict";
(function () {
  var code = window.location.hash.slice(1);
  var form = document.getElementById("welcome");
  var field = document.getElementById("invite");
  if (!code || !form || !field) return;
  window.history.replaceState(null, "", window.location.pathname);
  field.value = code;
  form.submit();
})();
