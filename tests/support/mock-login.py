#!/usr/bin/env python3
"""The browser for PyPI's oidc-provider-mock (tests/suite/trust_attacks.rs), run by the plugin as
--browser-command with the URL to open: loads its authorization page, submits its form as the
user MOCK_LOGIN_SUB (default alice), and follows the redirect to the plugin's loopback listener,
as a person's browser would. Standard library only."""
import os
import sys
import urllib.parse
import urllib.request

url = sys.argv[-1]
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
# The page (and any redirect before it) as a browser sees it; the form posts to that address.
with opener.open(url, timeout=30) as page:
    form_url = page.geturl()
    page.read()
body = urllib.parse.urlencode({"sub": os.environ.get("MOCK_LOGIN_SUB", "alice")}).encode()
with opener.open(urllib.request.Request(form_url, data=body), timeout=30) as landed:
    landed.read()
