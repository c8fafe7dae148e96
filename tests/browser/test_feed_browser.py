"""The encrypted class feed as people use it, each person in their own Chromium profile.

The school (teacher, class, children, three guardians who have joined) is
seeded through the real services before the node starts, as ``carnet demo``
does: the onboarding pages are covered by ``test_onboarding_browser.py``.
Everything about the feed then happens in the browsers: the teacher's first
visit creates the class keys, approvals, posts with a photo (carrying EXIF
and GPS), audio (a file and a recording from a fake microphone) and a PDF,
comments, reactions, read receipts, a reminder, a post for one family, and
the removal of a guardian with the change of class key that follows.

``CARNET_TEST_SCREENSHOTS=1`` saves phone-sized screenshots under
``tests/browser/screenshots/`` (not committed).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import struct
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ServedNode,
    new_page,
    seeded_node,
)

pytestmark = pytest.mark.browser

PASSPHRASE = "chalk river marble lantern"
TEACHER = "dubois@ecole.test"
CAMILLE = ("Camille Martin", "+33639980001", "06 39 98 00 01")  # Léa's guardian
SAM = ("Sam Martin", "+33639980002", "06 39 98 00 02")  # Léa's other guardian, never opens the feed
KARIM = ("Karim Bernard", "+33639980003", "06 39 98 00 03")  # Tom's guardian, removed at the end
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
GPS_MARKER = b"CARNET-SECRET-PLACE"


# --------------------------------------------------------------------------- seeding


def seed(data_dir: Path) -> dict[str, Any]:
    """The school before anyone opens the feed; run in its own process (one database per process)."""
    from node.cli import _context
    from node.refclient import new_account
    from node.services import accounts, directory, onboarding, sms_outbox
    from node.storage import onboarding as sms_store

    ctx, storage = _context(data_dir)
    iterations = ctx.config.kdf_iterations

    def staff(admin: Any, role: str, name: str, email: str) -> Any:
        _, token = accounts.create_staff(ctx, admin, role, name, email)
        creds = new_account(email, PASSPHRASE, iterations).credentials
        grant = accounts.complete_setup(ctx, token, creds, "seed")
        accounts.logout(ctx, grant.actor)
        return grant.actor

    def join(phone: str, code: str) -> None:
        attempt = onboarding.start(ctx, phone, code, "127.0.0.1", "en")
        texts = sms_store.select_queued_sms_to(phone)
        sms_code = re.search(r"\b(\d{6})\b", texts[-1].body or "")
        assert sms_code is not None
        for text in texts:
            sms_outbox.record_result(ctx, text.id, "sent", "seed", None, False)
        verified = onboarding.verify_sms(ctx, attempt.attempt_id, sms_code[1], "127.0.0.1")
        creds = new_account(verified.login, PASSPHRASE, iterations).credentials
        accounts.logout(ctx, onboarding.complete_new(ctx, attempt.attempt_id, creds, "seed").actor)

    def school() -> dict[str, Any]:
        admin = staff(None, "admin", "Claire Directrice", "direction2@ecole.test")
        teacher = staff(admin, "teacher", "M. Dubois", TEACHER)
        ce1 = directory.create_class(ctx, teacher, "CE1 A")
        lea = directory.add_child(ctx, teacher, ce1.id, "Léa", "Martin")
        tom = directory.add_child(ctx, teacher, ce1.id, "Tom", "Bernard")
        for child, (name, phone, _) in ((lea, CAMILLE), (lea, SAM), (tom, KARIM)):
            join(phone, directory.register_guardian(ctx, teacher, child.id, name, phone).code)
        return {"class_id": ce1.id, "lea": lea.id, "tom": tom.id}

    try:
        return storage.call(school)
    finally:
        storage.close()


@pytest.fixture
def school(tmp_path: Path) -> Iterator[tuple[ServedNode, dict[str, Any]]]:
    with seeded_node(tmp_path, "tests.browser.test_feed_browser") as served:
        yield served


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Chromium with a fake microphone (a beep) that needs no permission prompt."""
    args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


# --------------------------------------------------------------------------- files


def exif_segment(description: bytes) -> bytes:
    """An APP1 Exif segment (little-endian TIFF) with a description and a GPS position."""
    desc = description + b"\0"
    pad = b"\0" * (len(desc) % 2)
    desc_at = 8 + 2 + 2 * 12 + 4
    gps_at = desc_at + len(desc) + len(pad)
    lat_at = gps_at + 2 + 5 * 12 + 4

    def entry(tag: int, kind: int, count: int, value: bytes) -> bytes:
        return struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")

    def rationals(*values: tuple[int, int]) -> bytes:
        return b"".join(struct.pack("<II", n, d) for n, d in values)

    tiff = b"II*\0" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 2)
    tiff += entry(0x010E, 2, len(desc), struct.pack("<I", desc_at))  # ImageDescription
    tiff += entry(0x8825, 4, 1, struct.pack("<I", gps_at)) + struct.pack("<I", 0)  # GPS IFD
    tiff += desc + pad
    tiff += struct.pack("<H", 5)
    tiff += entry(0x0000, 1, 4, bytes([2, 2, 0, 0]))  # GPSVersionID
    tiff += entry(0x0001, 2, 2, b"N\0")
    tiff += entry(0x0002, 5, 3, struct.pack("<I", lat_at))
    tiff += entry(0x0003, 2, 2, b"E\0")
    tiff += entry(0x0004, 5, 3, struct.pack("<I", lat_at + 24)) + struct.pack("<I", 0)
    tiff += rationals((48, 1), (51, 1), (2405, 100)) + rationals((2, 1), (17, 1), (4000, 100))
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) of each segment before the image data."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    found, at = [], 2
    while at < len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        found.append((marker, data[at + 4 : at + 2 + length]))
        if marker == 0xDA:  # start of scan
            break
        at += 2 + length
    return found


def has_exif(data: bytes) -> bool:
    return any(m == 0xE1 and p.startswith(b"Exif\0\0") for m, p in jpeg_segments(data))


def photo_with_gps(page: Page, path: Path) -> bytes:
    """A 800×600 JPEG drawn by Chromium's canvas, with an Exif/GPS segment added by hand."""
    b64 = page.evaluate(
        """() => {
          const c = document.createElement('canvas');
          c.width = 800; c.height = 600;
          const g = c.getContext('2d');
          const grad = g.createLinearGradient(0, 0, 800, 600);
          grad.addColorStop(0, '#1d6fa5'); grad.addColorStop(1, '#f2c14e');
          g.fillStyle = grad; g.fillRect(0, 0, 800, 600);
          g.fillStyle = '#fff'; g.font = 'bold 64px sans-serif'; g.fillText('Musée', 250, 320);
          return c.toDataURL('image/jpeg', 0.9).split(',')[1];
        }"""
    )
    plain = base64.b64decode(b64)
    data = plain[:2] + exif_segment(GPS_MARKER) + plain[2:]
    assert has_exif(data) and GPS_MARKER in data
    path.write_bytes(data)
    return data


def wav_tone(path: Path, seconds: float = 1.0, rate: int = 8000) -> bytes:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return path.read_bytes()


def pdf_file(path: Path) -> bytes:
    """A valid one-page PDF of ~100 kB (two encrypted chunks), with random bytes inside."""
    filler = os.urandom(50_000).hex().encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(filler) + 1, filler),
    ]
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(out)
    return out


# --------------------------------------------------------------------------- people


def log_in(page: Page, node: ServedNode, login: str, landing: str) -> None:
    page.goto(f"{node.url}/login")
    page.fill("#login", login)
    page.fill("#passphrase", PASSPHRASE)
    page.click("#login-submit")
    page.wait_for_url(f"{node.url}{landing}")


def post_card(page: Page, text: str) -> Locator:
    return page.locator("#posts article.post", has_text=text)


def feed_ready(page: Page) -> None:
    expect(page.locator("#feed")).to_have_attribute("aria-busy", "false", timeout=15_000)
    expect(page.locator("#feed-error")).to_be_hidden()


def downloaded(page: Page, button: Locator) -> tuple[str, bytes]:
    with page.expect_download() as info:
        button.click()
    download = info.value
    path = download.path()
    return download.suggested_filename, Path(path).read_bytes()


def shoot(page: Page, name: str) -> None:
    if os.environ.get("CARNET_TEST_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def api_json(page: Page, path: str) -> Any:
    """GET /api/v1… with this person's session, from their page."""
    return page.evaluate(
        "async (p) => { const r = await fetch('/api/v1' + p); return {status: r.status, body: await r.json().catch(() => null)}; }",
        path,
    )


def test_class_feed_end_to_end(
    school: tuple[ServedNode, dict[str, Any]], chromium: Browser, tmp_path: Path
) -> None:
    node, ids = school
    class_id = ids["class_id"]
    feed_url = f"{node.url}/classes/{class_id}/feed"

    # The teacher's first visit to the class feed sets up the class keys; the
    # three guardians who joined wait for approval.
    teacher = new_page(chromium, accept_downloads=True, **PHONE)
    teacher.context.grant_permissions(["microphone"], origin=node.url)
    log_in(teacher, node, TEACHER, "/classes")
    teacher.goto(feed_url)
    feed_ready(teacher)
    approvals = teacher.locator("#approvals")
    expect(approvals).to_be_visible()
    expect(approvals.locator("h3")).to_have_text("Guardians waiting for your approval")
    waiting = approvals.locator("#approval-list li")
    expect(waiting).to_have_count(3)
    expect(waiting.filter(has_text="Karim Bernard")).to_contain_text("(Tom)")
    expect(waiting.first.locator("code.fingerprint")).to_have_text(re.compile(r"^[0-9A-F ]{39}$"))
    teacher.click("#approve-all")
    expect(teacher.locator("#feed-status")).to_contain_text("Approved")
    expect(approvals).to_be_hidden()
    teacher.reload()
    feed_ready(teacher)
    expect(approvals).to_be_hidden()
    expect(teacher.locator("#feed-status")).to_have_text("No post yet.")

    # A post with a photo carrying GPS, an audio file, a recording and a PDF.
    photo = photo_with_gps(teacher, tmp_path / "sortie-musee.jpg")
    wav = wav_tone(tmp_path / "chanson.wav")
    pdf_name = "Liste des fournitures été.pdf"
    pdf = pdf_file(tmp_path / pdf_name)
    text = "Sortie au musée jeudi : prévoir un goûter et une casquette."
    teacher.fill("#post-text", text)
    teacher.set_input_files(
        "#post-files",
        [tmp_path / "sortie-musee.jpg", tmp_path / "chanson.wav", tmp_path / pdf_name],
    )
    record = teacher.locator("#record")
    record.click()
    expect(record).to_have_text("Stop recording")
    teacher.wait_for_timeout(1200)
    record.click()
    expect(record).to_have_text("Record an audio message")
    picked = teacher.locator("#picked li")
    expect(picked).to_have_count(4)
    expect(picked.nth(3)).to_contain_text(re.compile(r"^Audio message-[\d-]+\.(webm|ogg|m4a)"))
    shoot(teacher, "teacher-composer")
    teacher.click("#post-submit")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    post = post_card(teacher, text)
    expect(post).to_have_count(1)
    expect(teacher.locator("#composer .alert.error")).to_be_hidden()
    expect(post.locator(".post-text")).to_have_text(text)
    expect(post.locator(".attachment")).to_have_count(4)
    thumb = post.locator(".attachment.image img")
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    expect(thumb).to_have_attribute("alt", "sortie-musee.jpg")
    assert thumb.evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    ) == [
        480,
        360,
    ]
    audio_boxes = post.locator(".attachment.audio")
    expect(audio_boxes).to_have_count(2)
    for i, duration in ((0, 1.0), (1, None)):
        box = audio_boxes.nth(i)
        box.get_by_role("button", name="Play").click()
        audio = box.locator("audio[controls]")
        expect(audio).to_have_count(1)
        state = audio.evaluate(
            """a => new Promise((ok) => {
                 const done = () => ok({ready: a.readyState, error: a.error && a.error.code, duration: a.duration});
                 if (a.readyState >= 1) done(); else { a.onloadedmetadata = done; a.onerror = done; }
               })"""
        )
        assert state["error"] is None and state["ready"] >= 1, state
        if duration is not None:
            assert abs(state["duration"] - duration) < 0.05, state
    expect(post.locator(".attachment.file .file-name")).to_have_text(f"📄 {pdf_name}")
    expect(post.locator(".post-tools .receipts")).to_have_text("Read by 0 of 3")
    shoot(teacher, "teacher-class-feed")

    # Two guardians, each on their own phone, read the post decrypted.
    camille = new_page(chromium, accept_downloads=True, **PHONE)
    log_in(camille, node, CAMILLE[2], "/home")
    feed_ready(camille)
    c_post = post_card(camille, text)
    expect(c_post.locator(".post-text")).to_have_text(text)
    expect(c_post.locator(".class-tag")).to_have_text("CE1 A")
    expect(c_post.locator(".child-tag")).to_have_text("Léa")
    expect(c_post.locator(".post-author")).to_have_text("M. Dubois")
    expect(c_post.locator(".attachment.image img")).to_have_attribute("src", re.compile(r"^blob:"))

    with camille.expect_popup() as opened:
        c_post.locator("button.photo").click()
    full = opened.value.locator("img")
    assert full.evaluate(
        "img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])"
    ) == [
        800,
        600,
    ]
    opened.value.close()

    # The photo she downloads was re-encoded: no EXIF, no GPS, same size.
    name, got = downloaded(
        camille, c_post.locator(".attachment.image").get_by_role("button", name="Download")
    )
    assert name == "sortie-musee.jpg"
    assert got[:2] == b"\xff\xd8" and got != photo
    assert not has_exif(got) and GPS_MARKER not in got and b"GPS" not in got
    sof = next(p for m, p in jpeg_segments(got) if m in (0xC0, 0xC2))
    assert struct.unpack(">HH", sof[1:5]) == (600, 800)
    # The PDF and the audio file come back under their names, byte for byte.
    name, got = downloaded(
        camille, c_post.locator(".attachment.file").get_by_role("button", name="Download")
    )
    assert (name, got) == (pdf_name, pdf)
    name, got = downloaded(
        camille, c_post.locator(".attachment.audio").first.get_by_role("button", name="Download")
    )
    assert (name, got) == ("chanson.wav", wav)

    karim = new_page(chromium, **PHONE)
    log_in(karim, node, KARIM[2], "/home")
    feed_ready(karim)
    k_post = post_card(karim, text)
    expect(k_post.locator(".post-text")).to_have_text(text)
    expect(k_post.locator(".child-tag")).to_have_text("Tom")

    # Camille comments, Karim reacts; each sees the other's after a reload.
    c_post.locator(".comment-form textarea").fill("Merci, Léa sera ravie !")
    c_post.locator(".comment-form").get_by_role("button", name="Send").click()
    expect(post_card(camille, text).locator(".comment-list")).to_contain_text(
        "Merci, Léa sera ravie !"
    )
    expect(karim.locator("#feed")).to_have_attribute("aria-busy", "false")
    post_card(karim, text).locator(".reactions button", has_text="👍").click()
    expect(post_card(karim, text).locator(".reactions button.mine")).to_have_text("👍 1")
    karim.reload()
    feed_ready(karim)
    k_comments = post_card(karim, text).locator(".comment-list li")
    expect(k_comments).to_have_count(1)
    expect(k_comments).to_contain_text("Camille Martin")
    expect(k_comments).to_contain_text("Merci, Léa sera ravie !")
    expect(k_comments.get_by_role("button", name="Delete")).to_have_count(0)
    camille.reload()
    feed_ready(camille)
    thumbs_up = post_card(camille, text).locator(".reactions button", has_text="👍")
    expect(thumbs_up).to_have_text("👍 1")
    expect(thumbs_up).to_have_attribute("aria-pressed", "false")
    shoot(camille, "guardian-home-feed")

    # The teacher sees who has read, per child, and reminds Sam.
    teacher.reload()
    feed_ready(teacher)
    post = post_card(teacher, text)
    expect(post.locator(".comment-list")).to_contain_text("Merci, Léa sera ravie !")
    expect(post.locator(".reactions button", has_text="👍")).to_have_text("👍 1")
    receipts = post.locator(".post-tools .receipts")
    expect(receipts).to_have_text("Read by 2 of 3")
    receipts.click()
    dialog = teacher.locator("#receipts-dialog")
    expect(dialog).to_be_visible()
    body = dialog.locator("#receipts-body")
    expect(body.locator("p").first).to_have_text("Read by 2 of 3")
    lea = body.locator("ul.receipts > li", has_text="Léa Martin")
    expect(lea.locator("li.read")).to_contain_text("Camille Martin — Read (")
    expect(lea.locator("li.unread")).to_have_text("Sam Martin — Not read yet")
    tom = body.locator("ul.receipts > li", has_text="Tom Bernard")
    expect(tom.locator("li.read")).to_contain_text("Karim Bernard — Read (")
    shoot(teacher, "teacher-receipts")
    dialog.get_by_role("button", name="Remind those who have not read").click()
    expect(dialog.locator("#receipts-note")).to_contain_text("Reminder sent to 1")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # A post for Tom's family only.
    private = "Tom a oublié son cahier de poésie en classe."
    teacher.check("input[name=audience][value=children]")
    expect(teacher.locator("#audience-children")).to_be_visible()
    teacher.get_by_label("Tom Bernard").check()
    teacher.fill("#post-text", private)
    teacher.click("#post-submit")
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    expect(post_card(teacher, private).locator(".child-tag")).to_have_text("About Tom")
    expect(post_card(teacher, private).locator(".receipts")).to_have_text("Read by 0 of 1")
    karim.reload()
    feed_ready(karim)
    expect(post_card(karim, private).locator(".post-text")).to_have_text(private)
    expect(post_card(karim, private).locator(".child-tag")).to_have_text("About Tom")
    camille.reload()
    feed_ready(camille)
    expect(post_card(camille, text)).to_have_count(1)
    expect(camille.locator("#posts")).not_to_contain_text("cahier")
    seen = api_json(camille, "/feed")
    assert seen["status"] == 200 and len(seen["body"]["items"]) == 1

    # Karim's key material before he leaves: his envelope for the first class key.
    before = api_json(karim, f"/classes/{class_id}/group")
    assert before["status"] == 200 and [e["epoch"] for e in before["body"]["envelopes"]] == [0]
    karim_account = karim.locator("#key-state").get_attribute("data-account-id")

    # The teacher removes Karim from Tom on the roster, then goes back to the
    # feed: the page signs the removal and a new class key on its own.
    teacher.goto(f"{node.url}/classes/{class_id}")
    teacher.once("dialog", lambda d: d.accept())
    teacher.locator("ul.guardians li", has_text="Karim Bernard").get_by_role(
        "button", name="Remove"
    ).click()
    expect(teacher.locator("ul.guardians li", has_text="Karim Bernard")).to_have_count(0)
    teacher.goto(feed_url)
    feed_ready(teacher)
    expect(teacher.locator("#feed-status")).to_have_text(
        "A guardian left the class: the class key was changed so they cannot read new posts."
    )
    group = api_json(teacher, f"/classes/{class_id}/group")["body"]
    assert [e["op"] for e in group["entries"][-2:]] == ["remove", "rotate"]
    assert group["entries"][-1]["body"]["epoch"] == 1
    after = "Merci à tous pour la sortie !"
    teacher.fill("#post-text", after)
    with teacher.expect_response(
        lambda r: r.url.endswith(f"/api/v1/classes/{class_id}/blobs") and r.request.method == "POST"
    ) as started:
        teacher.set_input_files("#post-files", [tmp_path / pdf_name])
        teacher.click("#post-submit")
    new_blob = started.value.json()["id"]
    expect(teacher.locator("#feed-status")).to_have_text("Up to date.", timeout=20_000)
    expect(post_card(teacher, after).locator(".receipts")).to_have_text("Read by 0 of 2")

    # Karim's browser gets nothing new: the class is gone from his home and the node refuses.
    assert karim.js_errors == [], karim.js_errors  # type: ignore[attr-defined]
    karim.js_errors.clear()  # type: ignore[attr-defined]  # the 404s below get logged
    karim.reload()
    expect(karim.locator(".child-card")).to_have_count(0)
    expect(karim.locator("main")).to_contain_text("No child is linked to your account yet.")
    expect(karim.locator("#feed")).to_have_count(0)
    for path in (f"/classes/{class_id}/group", f"/classes/{class_id}/posts", f"/blobs/{new_blob}"):
        assert api_json(karim, path)["status"] == 404, path
    assert api_json(karim, "/feed")["body"]["items"] == []

    # Even handed the new post's ciphertext and the whole log, his stored keys
    # open the old class key and nothing newer.
    wire = next(
        i["message"]
        for i in api_json(teacher, f"/classes/{class_id}/posts")["body"]["items"]
        if i["message"]["header"]["epoch"] == 1
    )
    tried = karim.evaluate(
        """async ({wire, entries, mine, teacherEnvelopes, account}) => {
          const G = await import('/static/js/e2e/groups.js');
          const { loadAccountKeys } = await import('/static/js/e2e/keystore.js');
          const keys = await loadAccountKeys(`${location.origin}|${account}`);
          const state = await G.verifyLog(entries);
          const me = mine.me;
          const old = await G.openEpochKey(state.group, mine.envelopes[0], me, keys.enc, keys.encPk,
                                           state.epochs[0].commit);
          const outcome = { oldKeyOpened: old.length === 32, failures: [] };
          for (const epoch of [0, 1]) {
            try {
              const k = await G.messageKeyFromEpoch(old, state.group, epoch, wire.header.id);
              await G.decryptMessage(wire, k, { state });
              outcome.failures.push(`decrypted with the epoch-0 key as epoch ${epoch}`);
            } catch (err) { /* expected */ }
          }
          for (const envelope of teacherEnvelopes.filter((e) => e.epoch === 1)) {
            try {
              await G.openEpochKey(state.group, envelope, me, keys.enc, keys.encPk, state.epochs[1].commit);
              outcome.failures.push('opened an epoch-1 envelope');
            } catch (err) { /* expected */ }
          }
          outcome.tried = teacherEnvelopes.filter((e) => e.epoch === 1).length;
          return outcome;
        }""",
        {
            "wire": wire,
            "entries": group["entries"],
            "mine": before["body"],
            "teacherEnvelopes": group["envelopes"],
            "account": karim_account,
        },
    )
    assert tried == {"oldKeyOpened": True, "failures": [], "tried": 1}, tried

    # Camille reads the new post, and the first one still.
    camille.reload()
    feed_ready(camille)
    expect(post_card(camille, after).locator(".attachment.file .file-name")).to_have_text(
        f"📄 {pdf_name}"
    )
    expect(post_card(camille, text).locator(".post-text")).to_have_text(text)
    shoot(camille, "guardian-home-feed-after")
    teacher.reload()
    feed_ready(teacher)
    shoot(teacher, "teacher-class-feed-after")

    for page in (teacher, camille):
        assert page.js_errors == [], page.js_errors  # type: ignore[attr-defined]


if (
    __name__ == "__main__"
):  # the seeding, in its own process: python -m tests.browser.test_feed_browser DIR
    print(json.dumps(seed(Path(sys.argv[1]))))
