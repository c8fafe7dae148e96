// A small ZIP writer for the data export (APPNOTE.TXT 6.3.x): entries are
// stored (method 0, no compression: photos and videos are compressed already,
// and the writer stays small enough to read in one sitting), each with its
// CRC-32 and a UTF-8 name (general purpose bit 11), followed by the central
// directory. No ZIP64: more than 65,535 entries or 4 GiB is refused with a
// RangeError the page explains, rather than a file that unzips wrong.

const UTF8_NAMES = 0x0800;
const VERSION = 20; // 2.0: what stored entries in folders need
const MADE_BY = (3 << 8) | VERSION; // Unix, so the file modes below are read
const FILE_MODE = 0o100644;
const MAX_32 = 0xffffffff;
const MAX_ENTRIES = 0xffff;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO-HDLC, the one ZIP and gzip use) of bytes, continuing from `crc`. */
export function crc32(bytes, crc = 0) {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** MS-DOS time and date of a Date, in its local time (what unzip tools show); 1980 at the earliest. */
export function dosDateTime(date) {
  const year = Math.min(Math.max(date.getFullYear(), 1980), 2107);
  const time = (date.getHours() << 11) | (date.getMinutes() << 5) | (date.getSeconds() >> 1);
  const day = ((year - 1980) << 9) | ((date.getMonth() + 1) << 5) | date.getDate();
  return { time, date: day };
}

/** A name inside the archive: relative, forward slashes, no empty, "." or ".." part. */
export function checkName(name) {
  if (typeof name !== 'string' || !name || name.startsWith('/') || name.includes('\\') || name.includes('\0')) {
    throw new TypeError(`not a usable name in a zip: ${JSON.stringify(name)}`);
  }
  if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new TypeError(`not a usable name in a zip: ${JSON.stringify(name)}`);
  }
  return name;
}

const encoder = new TextEncoder();

export class ZipWriter {
  constructor() {
    this.parts = [];
    this.central = [];
    this.names = new Set();
    this.offset = 0;
  }

  /** Add a file: `data` a string (written as UTF-8) or bytes; `date` its modification time. */
  add(name, data, { date = new Date() } = {}) {
    checkName(name);
    if (this.names.has(name)) throw new TypeError(`two files named ${JSON.stringify(name)}`);
    if (this.names.size >= MAX_ENTRIES) throw new RangeError('too many files for one zip');
    let bytes;
    if (typeof data === 'string') bytes = encoder.encode(data);
    else if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const nameBytes = encoder.encode(name);
    if (nameBytes.length > 0xffff) throw new TypeError('a file name is too long for a zip');
    const headerSize = 30 + nameBytes.length;
    if (bytes.length >= MAX_32 || this.offset + headerSize + bytes.length >= MAX_32) {
      throw new RangeError('too large for one zip');
    }
    const crc = crc32(bytes);
    const when = dosDateTime(date);

    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, VERSION, true);
    local.setUint16(6, UTF8_NAMES, true);
    local.setUint16(8, 0, true); // stored
    local.setUint16(10, when.time, true);
    local.setUint16(12, when.date, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, bytes.length, true); // compressed size: stored, the same
    local.setUint32(22, bytes.length, true);
    local.setUint16(26, nameBytes.length, true);
    local.setUint16(28, 0, true); // no extra field
    this.parts.push(new Uint8Array(local.buffer), nameBytes, bytes);

    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, MADE_BY, true);
    entry.setUint16(6, VERSION, true);
    entry.setUint16(8, UTF8_NAMES, true);
    entry.setUint16(10, 0, true);
    entry.setUint16(12, when.time, true);
    entry.setUint16(14, when.date, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, bytes.length, true);
    entry.setUint32(24, bytes.length, true);
    entry.setUint16(28, nameBytes.length, true);
    // 30: extra length, 32: comment length, 34: disk, 36: internal attributes: all 0
    entry.setUint32(38, (FILE_MODE << 16) >>> 0, true);
    entry.setUint32(42, this.offset, true);
    this.central.push(new Uint8Array(entry.buffer), nameBytes);

    this.names.add(name);
    this.offset += headerSize + bytes.length;
  }

  /** Every byte of the archive, as a list of chunks (a Blob takes them without copying). */
  finish() {
    const size = this.central.reduce((n, part) => n + part.length, 0);
    if (this.offset + size >= MAX_32) throw new RangeError('too large for one zip');
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    // 4: this disk, 6: the disk the directory starts on: 0
    end.setUint16(8, this.names.size, true);
    end.setUint16(10, this.names.size, true);
    end.setUint32(12, size, true);
    end.setUint32(16, this.offset, true);
    end.setUint16(20, 0, true); // no comment
    return [...this.parts, ...this.central, new Uint8Array(end.buffer)];
  }

  /** The archive as a Blob to download. */
  blob() {
    return new Blob(this.finish(), { type: 'application/zip' });
  }
}
