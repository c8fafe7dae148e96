// The export's ZIP writer (web/static/js/export/zip.js): CRC-32 against the
// standard check values, the archive's structure byte by byte, and names it
// refuses. tests/web/test_export_zip.py opens its output with Python's zipfile.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { checkName, crc32, dosDateTime, ZipWriter } from '../../web/static/js/export/zip.js';

const bytes = (text) => new TextEncoder().encode(text);

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test('crc32 gives the standard check values', () => {
  assert.equal(crc32(bytes('')), 0);
  assert.equal(crc32(bytes('123456789')), 0xcbf43926); // the CRC-32/ISO-HDLC check value
  assert.equal(crc32(bytes('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  assert.equal(crc32(new Uint8Array(32).fill(0xff)), 0xff6cab0b);
  // continuing a CRC over a second chunk gives the CRC of the whole
  assert.equal(crc32(bytes('56789'), crc32(bytes('1234'))), 0xcbf43926);
});

test('dates become MS-DOS time and date fields', () => {
  const { time, date } = dosDateTime(new Date(2026, 2, 14, 9, 30, 59));
  assert.equal(date, ((2026 - 1980) << 9) | (3 << 5) | 14);
  assert.equal(time, (9 << 11) | (30 << 5) | 29); // two-second steps
  assert.equal(dosDateTime(new Date(1970, 0, 1)).date >> 9, 0); // clamped to 1980
});

test('an archive of stored entries: headers, UTF-8 names, directory and end record', () => {
  const zip = new ZipWriter();
  const when = new Date(2026, 10, 29, 12, 0, 0);
  zip.add('README.txt', 'Bonjour', { date: when });
  zip.add('files/élève.bin', new Uint8Array([0, 1, 2, 255]), { date: when });
  const out = concat(zip.finish());
  const view = new DataView(out.buffer);
  assert.equal(view.getUint32(0, true), 0x04034b50);
  assert.equal(view.getUint16(6, true), 0x0800); // UTF-8 names
  assert.equal(view.getUint16(8, true), 0); // stored
  assert.equal(view.getUint32(14, true), crc32(bytes('Bonjour')));
  assert.equal(view.getUint32(18, true), 7);
  assert.equal(new TextDecoder().decode(out.slice(30, 40)), 'README.txt');
  assert.equal(new TextDecoder().decode(out.slice(40, 47)), 'Bonjour');
  const end = out.length - 22;
  assert.equal(view.getUint32(end, true), 0x06054b50);
  assert.equal(view.getUint16(end + 10, true), 2);
  const cdStart = view.getUint32(end + 16, true);
  const cdSize = view.getUint32(end + 12, true);
  assert.equal(cdStart + cdSize, end);
  assert.equal(view.getUint32(cdStart, true), 0x02014b50);
  assert.equal(view.getUint32(cdStart + 42, true), 0); // the first file starts the archive
  const second = cdStart + 46 + 'README.txt'.length;
  assert.equal(view.getUint32(second, true), 0x02014b50);
  assert.equal(view.getUint32(second + 42, true), 47); // after the first entry
  assert.equal(view.getUint16(second + 28, true), bytes('files/élève.bin').length);
});

test('unusable or repeated names are refused', () => {
  for (const name of ['', '/etc/passwd', '../up', 'a/../b', 'a\\b', 'a//b', 'dir/', './a']) {
    assert.throws(() => checkName(name), TypeError, name);
  }
  const zip = new ZipWriter();
  zip.add('data.json', '{}');
  assert.throws(() => zip.add('data.json', '{}'), TypeError);
});

test('an empty archive is just the end record', () => {
  const out = concat(new ZipWriter().finish());
  assert.equal(out.length, 22);
  assert.equal(new DataView(out.buffer).getUint32(0, true), 0x06054b50);
});
