"""JS → Python round trip of the group layer (docs/protocol/e2e-groups.md).

tests/js/make-groups-roundtrip.mjs builds, with fresh random keys and the
browser module web/static/js/e2e/groups.js, a membership log, envelopes,
epoch-key and recipient-mode messages and a 70000-byte attachment; the Python
reference must verify and open all of it (the vectors cover Python → JS).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from node.e2e import attachments as att
from node.e2e import groups as grp
from node.e2e import messages as msg
from node.e2e.encoding import b64url_decode, b64url_encode

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "js" / "make-groups-roundtrip.mjs"


@pytest.fixture(scope="module")
def js() -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node (>= 20) is required for the JS round trip"
    done = subprocess.run(
        [node, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def keys(js: dict[str, Any], name: str) -> dict[str, bytes]:
    return {k: b64url_decode(v) for k, v in js["people"][name].items()}


def test_log_verifies_in_python(js: dict[str, Any]) -> None:
    teacher = js["people"]["teacher"]
    m = js["members"]
    state = grp.verify_log(
        copy.deepcopy(js["log"]),
        pinned_admins=[teacher["sign_pk"]],
        known_head=(js["head"]["seq"], js["head"]["hash"]),
    )
    assert state.group == js["group"]
    assert (state.head_seq, state.head_hash) == (js["head"]["seq"], js["head"]["hash"])
    assert state.active_members() == js["head"]["active"] == sorted([m["teacher"], m["anna"]])
    assert [e.to for e in state.epochs] == [
        sorted([m["teacher"], m["anna"], m["ben"]]),
        sorted([m["teacher"], m["anna"]]),
    ]
    assert [e.cut for e in state.epochs] == [True, False]
    assert state.pending_removals == []
    for i, entry in enumerate(js["log"][1:], start=1):
        assert entry["prev"] == grp.entry_hash(js["log"][i - 1])
    # The Python rules still bite on the JS-made log.
    bad = copy.deepcopy(js["log"])
    bad[2]["body"]["role"] = "teacher"
    with pytest.raises(grp.GroupLogError, match="bad signature"):
        grp.verify_log(bad)


def test_envelopes_and_history_open_in_python(js: dict[str, Any]) -> None:
    state = grp.verify_log(copy.deepcopy(js["log"]))
    k0, k1 = (b64url_decode(k) for k in js["epoch_keys"])
    m, env = js["members"], js["envelopes"]
    for name, member, epoch, key in [
        ("anna_epoch_1", m["anna"], 1, k1),
        ("teacher_epoch_1", m["teacher"], 1, k1),
        ("ben_epoch_0", m["ben"], 0, k0),
    ]:
        person = keys(js, name.split("_")[0])
        opened = grp.open_epoch_key(
            js["group"],
            env[name],
            member,
            person["enc_sk"],
            person["enc_pk"],
            state.epochs[epoch].commit,
        )
        assert opened == key
    assert grp.epoch_keys_from(state, 1, k1) == {1: k1, 0: k0}
    anna = keys(js, "anna")
    with pytest.raises(grp.EpochKeyError):
        grp.open_epoch_key(
            js["group"], env["anna_epoch_1"], m["anna"], anna["enc_sk"], anna["enc_pk"],
            state.epochs[0].commit,
        )  # fmt: skip


def test_messages_decrypt_in_python(js: dict[str, Any]) -> None:
    state = grp.verify_log(copy.deepcopy(js["log"]))
    k1 = b64url_decode(js["epoch_keys"][1])
    for name in ("post", "comment"):
        case = js["messages"][name]
        header = case["wire"]["header"]
        km = msg.message_key_from_epoch(k1, js["group"], header["epoch"], header["id"])
        assert msg.check_header(header) == header
        assert msg.decrypt_message(case["wire"], km) == case["body"]
        assert state.signer_is_member(header["author"], header["by"])
    assert (
        js["messages"]["comment"]["wire"]["header"]["parent"]
        == (js["messages"]["post"]["wire"]["header"]["id"])
    )

    direct = js["messages"]["direct"]
    header = direct["wire"]["header"]
    assert header["epoch"] is None and header["version"] == 2
    assert [k["member"] for k in direct["wire"]["keys"]] == [
        js["members"]["anna"],
        js["members"]["teacher"],
    ]
    for sealed, name in zip(direct["wire"]["keys"], ("anna", "teacher"), strict=True):
        person = keys(js, name)
        km = msg.open_message_key(
            js["group"], header["id"], sealed, sealed["member"], person["enc_sk"], person["enc_pk"]
        )
        assert msg.decrypt_message(direct["wire"], km) == direct["body"]

    post = js["messages"]["post"]["wire"]
    km_post = msg.message_key_from_epoch(k1, js["group"], 1, post["header"]["id"])
    flipped = copy.deepcopy(post)
    ct = bytearray(b64url_decode(flipped["ct"]))
    ct[-1] ^= 1
    flipped["ct"] = b64url_encode(bytes(ct))
    with pytest.raises(msg.MessageError, match="signature"):
        msg.decrypt_message(flipped, km_post)
    with pytest.raises(msg.MessageError, match="key commitment"):
        msg.decrypt_message(post, km)  # the direct message's key


def test_attachment_decrypts_in_python(js: dict[str, Any]) -> None:
    a = js["attachment"]
    post_body = js["messages"]["post"]["body"]
    assert post_body["attachments"][0] == {k: v for k, v in a.items() if not k.endswith("_b64")}
    key, prefix = b64url_decode(a["key"]), b64url_decode(a["prefix"])
    blob, content = b64url_decode(a["blob_b64"]), b64url_decode(a["content_b64"])
    assert a["size"] == len(content) == 70000
    assert len(blob) == att.ciphertext_size(70000) == 70000 + 2 * 16
    assert att.sha256_b64(blob) == a["ct_sha256"]
    assert att.decrypt_file(key, prefix, a["size"], blob) == content
    step = att.CHUNK_SIZE + att.TAG
    assert att.decrypt_chunk(key, prefix, a["size"], 1, blob[step:]) == content[att.CHUNK_SIZE :]
    with pytest.raises(att.AttachmentError):
        att.decrypt_file(key, prefix, a["size"], blob[step:] + blob[:step])
