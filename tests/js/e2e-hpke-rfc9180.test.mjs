// RFC 9180 Appendix A.1 (base mode, AES-128-GCM) against suite.js: every
// intermediate value, the encryptions at several sequence numbers and the
// exports. The values in tests/vectors/hpke-rfc9180.json come from the RFC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import * as e2e from '../../web/static/js/e2e/suite.js';

const FILE = JSON.parse(readFileSync(new URL('../vectors/hpke-rfc9180.json', import.meta.url), 'utf8'));
const { hexToBytes: hex, bytesToHex: toHex } = e2e._internal;
const I = e2e._internal;

for (const v of FILE.vectors) {
  const aead = { 1: 'AES-128-GCM', 2: 'AES-256-GCM' }[v.aead_id];

  test(`${v.source.split(' (')[0]}: DeriveKeyPair`, async () => {
    for (const [ikm, sk, pk] of [[v.ikmE, v.skEm, v.pkEm], [v.ikmR, v.skRm, v.pkRm]]) {
      const kp = await I.deriveKeyPair(hex(ikm));
      assert.equal(toHex(kp.sk), sk);
      assert.equal(toHex(kp.pk), pk);
    }
  });

  test(`${v.source.split(' (')[0]}: Encap/Decap and key schedule`, async () => {
    const { sharedSecret, enc } = await I.encap(hex(v.pkRm), { ikmE: hex(v.ikmE) });
    assert.equal(toHex(enc), v.enc);
    assert.equal(toHex(sharedSecret), v.shared_secret);
    assert.equal(toHex(await I.decap(hex(v.enc), hex(v.skRm))), v.shared_secret);
    const ctx = await I.setupBaseR(hex(v.enc), hex(v.skRm), hex(v.info), { aead });
    assert.equal(toHex(ctx.keyScheduleContext), v.key_schedule_context);
    assert.equal(toHex(ctx.secret), v.secret);
    assert.equal(toHex(ctx.key), v.key);
    assert.equal(toHex(ctx.baseNonce), v.base_nonce);
    assert.equal(toHex(ctx.exporterSecret), v.exporter_secret);
  });

  test(`${v.source.split(' (')[0]}: encryptions and exports`, async () => {
    const { enc, context: sender } = await I.setupBaseS(hex(v.pkRm), hex(v.info), { aead, ikmE: hex(v.ikmE) });
    assert.equal(toHex(enc), v.enc);
    const receiver = await I.setupBaseR(hex(v.enc), hex(v.skRm), hex(v.info), { aead });
    for (const e of v.encryptions) {
      sender.seq = e.seq;
      receiver.seq = e.seq;
      assert.equal(toHex(sender.computeNonce(e.seq)), e.nonce);
      assert.equal(toHex(await sender.seal(hex(e.aad), hex(e.pt))), e.ct, `seq ${e.seq}`);
      assert.equal(toHex(await receiver.open(hex(e.aad), hex(e.ct))), e.pt);
    }
    for (const x of v.exports) {
      assert.equal(toHex(await receiver.export(hex(x.exporter_context), x.L)), x.exported_value);
    }
    // Single-shot API at sequence 0.
    const first = v.encryptions.find((e) => e.seq === 0);
    const pt = await e2e.hpkeOpen(hex(v.skRm), hex(v.enc), hex(v.info), hex(first.aad), hex(first.ct), { aead });
    assert.equal(toHex(pt), first.pt);
    const second = v.encryptions.find((e) => e.seq === 1);
    await assert.rejects(
      e2e.hpkeOpen(hex(v.skRm), hex(v.enc), hex(v.info), hex(second.aad), hex(second.ct), { aead }),
      (err) => err.code === 'hpke',
    );
  });
}
