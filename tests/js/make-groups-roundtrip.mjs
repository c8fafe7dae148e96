// JS → Python round trip of the group layer (not a test file by itself):
// with fresh random keys, builds a membership log, envelopes, an epoch-key
// post with an attachment descriptor, an epoch-key comment, a recipient-mode
// post and a 70000-byte attachment with web/static/js/e2e/groups.js, and
// prints them as JSON on stdout, with the private keys needed to open them.
// tests/node/e2e/test_e2e_groups_js_roundtrip.py runs it and opens
// everything with the Python reference (node/e2e).
// Usage: node tests/js/make-groups-roundtrip.mjs
import * as e2e from '../../web/static/js/e2e/suite.js';
import * as g from '../../web/static/js/e2e/groups.js';

const b64 = (bytes) => e2e.b64urlEncode(bytes);

async function person() {
  const raw = await e2e.generateAccountKeys();
  return { raw, keys: await e2e.importAccountKeys(raw) };
}

function randomContent(size) {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  return out;
}

const [teacher, anna, ben] = [await person(), await person(), await person()];
const members = { teacher: 't1@school.test', anna: 'a2@school.test', ben: 'b3@school.test' };
const group = g.newGroupId();
const [k0, k1] = [g.newEpochKey(), g.newEpochKey()];

const log = [];
async function append(op, body) {
  const prev = log.length ? await g.entryHash(log[log.length - 1]) : null;
  log.push(await g.makeEntry(teacher.keys.sign, teacher.raw.signPk, group, log.length, prev, op, body, 1800000000 + log.length));
}
await append('create', g.createBody([teacher.raw.signPk]));
await append('add', g.addBody(members.teacher, 'teacher', teacher.raw.signPk, teacher.raw.encPk));
await append('add', g.addBody(members.anna, 'guardian', anna.raw.signPk, anna.raw.encPk));
await append('add', g.addBody(members.ben, 'guardian', ben.raw.signPk, ben.raw.encPk));
await append('rotate', await g.rotateBody(group, 0, k0, [members.teacher, members.anna, members.ben], null));
await append('remove', g.removeBody(members.ben));
await append('rotate', await g.rotateBody(group, 1, k1, [members.teacher, members.anna], k0));
const state = await g.verifyLog(log);

const envelopes = {
  anna_epoch_1: await g.sealEpochKey(group, 1, k1, members.anna, anna.raw.encPk),
  teacher_epoch_1: await g.sealEpochKey(group, 1, k1, members.teacher, teacher.raw.encPk),
  ben_epoch_0: await g.sealEpochKey(group, 0, k0, members.ben, ben.raw.encPk),
};

// The attachment: 70000 random bytes (two chunks, the second short).
const content = randomContent(70000);
const file = g.newFileKey();
const blob = await g.encryptFile(file.key, file.prefix, content);
const descriptor = {
  blob: 'blob-1',
  key: b64(file.key),
  prefix: b64(file.prefix),
  size: content.length,
  ct_sha256: await g.sha256B64(blob),
  type: 'application/octet-stream',
  name: 'données été 🦕.bin',
  kind: 'file',
  thumb: null,
};

const postId = g.newMessageId();
const postBody = { text: 'Sortie jeudi 🦕 — « goûter » \n\t"ok" \\ \u2028', attachments: [descriptor] };
const post = await g.encryptMessage({
  signKey: teacher.keys.sign, signPk: teacher.raw.signPk, author: members.teacher, group, kind: 'post',
  body: postBody, messageKey: await g.messageKeyFromEpoch(k1, group, 1, postId), epoch: 1, messageId: postId, at: 1800000100,
});
const commentId = g.newMessageId();
const commentBody = { text: 'Merci !' };
const comment = await g.encryptMessage({
  signKey: anna.keys.sign, signPk: anna.raw.signPk, author: members.anna, group, kind: 'comment', body: commentBody,
  messageKey: await g.messageKeyFromEpoch(k1, group, 1, commentId), epoch: 1, parent: postId, messageId: commentId, at: 1800000200,
});

const directId = g.newMessageId();
const directKey = g.newEpochKey();
const directBody = { text: 'Anna a perdu une dent.', attachments: [] };
const direct = await g.encryptMessage({
  signKey: teacher.keys.sign, signPk: teacher.raw.signPk, author: members.teacher, group, kind: 'post', body: directBody,
  messageKey: directKey, to: [members.teacher, members.anna], messageId: directId, version: 2, at: 1800000300,
});
direct.keys = [
  await g.sealMessageKey(group, directId, directKey, members.anna, anna.raw.encPk),
  await g.sealMessageKey(group, directId, directKey, members.teacher, teacher.raw.encPk),
];

const keysJson = (p) => ({ sign_sk: b64(p.raw.signSk), sign_pk: b64(p.raw.signPk), enc_sk: b64(p.raw.encSk), enc_pk: b64(p.raw.encPk) });
process.stdout.write(
  JSON.stringify({
    people: { teacher: keysJson(teacher), anna: keysJson(anna), ben: keysJson(ben) },
    members,
    group,
    epoch_keys: [b64(k0), b64(k1)],
    log,
    head: { seq: state.headSeq, hash: state.headHash, active: state.activeMembers() },
    envelopes,
    messages: {
      post: { wire: post, body: postBody },
      comment: { wire: comment, body: commentBody },
      direct: { wire: direct, body: directBody },
    },
    attachment: { ...descriptor, blob_b64: b64(blob), content_b64: b64(content) },
  }) + '\n',
);
