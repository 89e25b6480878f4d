"""The HTML of the interactive docs: Swagger UI, ReDoc, and Swagger UI's OAuth2 redirect.

The pages load their scripts and styles from the URLs given (by default the CDN
locations FastAPI uses), so a deployment without internet access can serve its own
copies and point the app at them.
"""

from __future__ import annotations

import html
import json

SWAGGER_JS_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"
SWAGGER_CSS_URL = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"
REDOC_JS_URL = "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"


def _js(value: object) -> str:
    """A JSON literal safe inside a <script> element (no ``</script>`` can close it)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def swagger_ui_html(
    *, title: str, openapi_url: str, js_url: str, css_url: str, oauth2_redirect_url: str | None
) -> str:
    """Swagger UI showing the document at ``openapi_url``."""
    options: dict[str, object] = {
        "url": openapi_url,
        "dom_id": "#swagger-ui",
        "layout": "BaseLayout",
        "deepLinking": True,
        "showExtensions": True,
        "showCommonExtensions": True,
    }
    redirect = ""
    if oauth2_redirect_url:
        redirect = f"oauth2RedirectUrl: window.location.origin + {_js(oauth2_redirect_url)},"
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{html.escape(css_url)}">
<title>{html.escape(title)}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script src="{html.escape(js_url)}"></script>
<script>
const ui = SwaggerUIBundle(Object.assign({_js(options)}, {{
  {redirect}
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
}}));
</script>
</body>
</html>
"""


def redoc_html(*, title: str, openapi_url: str, js_url: str) -> str:
    """ReDoc showing the document at ``openapi_url``."""
    return f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{html.escape(openapi_url)}"></redoc>
<script src="{html.escape(js_url)}"></script>
</body>
</html>
"""


# Swagger UI opens the OAuth2 provider in a pop-up; the provider sends the browser back
# here with the code (or the token) in the URL, and this page hands it to the Swagger UI
# window that opened it, then closes.
OAUTH2_REDIRECT_HTML = """<!DOCTYPE html>
<html lang="en-US">
<head><title>Swagger UI: OAuth2 Redirect</title></head>
<body>
<script>
'use strict';
function relay() {
  var oauth2 = window.opener.swaggerUIRedirectOauth2;
  var sentState = oauth2.state;
  var redirectUrl = oauth2.redirectUrl;
  var query = /code|token|error/.test(window.location.hash)
    ? window.location.hash.substring(1).replace('?', '&')
    : location.search.substring(1);
  var params = {};
  query.split('&').forEach(function (pair) {
    if (!pair) { return; }
    var kv = pair.split('=');
    params[decodeURIComponent(kv[0])] = decodeURIComponent(kv.slice(1).join('=') || '');
  });
  var flow = oauth2.auth.schema.get('flow');
  var codeFlow = flow === 'accessCode' || flow === 'authorizationCode'
    || flow === 'authorization_code';
  if (codeFlow && !oauth2.auth.code) {
    if (!params.state || params.state !== sentState) {
      oauth2.errCb({authId: oauth2.auth.name, source: 'auth', level: 'warning',
                    message: "Authorization may be unsafe: the returned state differs"});
    }
    if (params.code) {
      delete oauth2.state;
      oauth2.auth.code = params.code;
      oauth2.callback({auth: oauth2.auth, redirectUrl: redirectUrl});
    } else {
      oauth2.errCb({authId: oauth2.auth.name, source: 'auth', level: 'error',
                    message: params.error
                      ? '[' + params.error + ']: ' + (params.error_description || '')
                      : 'No code was received from the authorization server'});
    }
  } else {
    oauth2.callback({auth: oauth2.auth, token: params, isValid: true,
                     redirectUrl: redirectUrl});
  }
  window.close();
}
if (document.readyState !== 'loading') {
  relay();
} else {
  document.addEventListener('DOMContentLoaded', relay);
}
</script>
</body>
</html>
"""
