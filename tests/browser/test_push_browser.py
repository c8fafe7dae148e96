"""The service worker in Chromium: registered at the root, it shows a pushed notice and opens its page.

The push message is handed to the worker through the DevTools protocol
(``ServiceWorker.deliverPushMessage``), as the browser does once it has
decrypted what the push service brought: no push service is contacted.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ServedNode, new_page
from tests.browser.test_onboarding_browser import set_passphrase

pytestmark = pytest.mark.browser


def test_service_worker_shows_the_notification_from_a_push(
    served_node: ServedNode, browser: Browser
) -> None:
    page = new_page(browser)
    page.context.grant_permissions(["notifications"], origin=served_node.url)
    page.goto(served_node.admin_setup_url)
    set_passphrase(page, "lighthouse pebble orchard")
    page.goto(f"{served_node.url}/account")
    section = page.locator("#notifications")
    expect(section).to_have_attribute("data-vapid-key", re.compile(r"^[A-Za-z0-9_-]{87}$"))
    expect(page.locator("#push-state")).to_have_text("Notifications are off for this device.")
    expect(page.locator("#push-on")).to_be_visible()

    cdp = page.context.new_cdp_session(page)
    registrations: list[str] = []
    cdp.on(
        "ServiceWorker.workerRegistrationUpdated",
        lambda e: registrations.extend(r["registrationId"] for r in e["registrations"]),
    )
    cdp.send("ServiceWorker.enable")
    scope = page.evaluate(
        """async () => {
            const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
            await navigator.serviceWorker.ready;
            return registration.scope;
        }"""
    )
    assert scope == f"{served_node.url}/"
    page.wait_for_timeout(200)
    assert registrations
    payload = {
        "v": 1,
        "kind": "post",
        "class": "CE1 A",
        "author": "M. Dubois",
        "title": "CE1 A",
        "body": {"fr": "Nouvelle publication de M. Dubois", "en": "New post from M. Dubois"},
        "lang": "fr",
        "url": "/classes/1/feed#m-AbCdEfGhIjKlMnOpQrStUv",
        "tag": "m-AbCdEfGhIjKlMnOpQrStUv",
    }
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {
            "origin": served_node.url,
            "registrationId": registrations[-1],
            "data": json.dumps(payload),
        },
    )
    shown = page.evaluate(
        """async () => {
            const registration = await navigator.serviceWorker.ready;
            for (let i = 0; i < 50; i++) {
                const list = await registration.getNotifications();
                if (list.length) return list.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }));
                await new Promise((r) => setTimeout(r, 100));
            }
            return [];
        }"""
    )
    assert shown == [
        {
            "title": "CE1 A",
            "body": "New post from M. Dubois",  # the browser speaks English here
            "tag": "m-AbCdEfGhIjKlMnOpQrStUv",
            "data": {"url": "/classes/1/feed#m-AbCdEfGhIjKlMnOpQrStUv"},
        }
    ]
    assert page.js_errors == []  # type: ignore[attr-defined]
