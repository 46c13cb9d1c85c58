// The API's browsable page (/api/docs): Swagger UI (swagger-ui-bundle.js, vendored: see
// README.md here) rendering the OpenAPI document this page names in data-url. Read-only:
// calls need an access token, which a business gets through OAuth, not from this page.
"use strict";
(function () {
  const root = document.getElementById("api-docs");
  window.SwaggerUIBundle({
    url: root.dataset.url,
    domNode: root,
    deepLinking: false,
    validatorUrl: null, // never send the document to another host to be checked
    supportedSubmitMethods: [], // no "Try it out": calls need a token
    // nor "Authorize" (its OAuth popup needs a page pds does not serve): the document's
    // security scheme still names the authorization server
    plugins: [
      () => ({
        wrapComponents: {
          authorizeBtn: () => () => null,
          authorizeOperationBtn: () => () => null,
        },
      }),
    ],
    defaultModelsExpandDepth: 0,
    docExpansion: "list",
  });
})();
