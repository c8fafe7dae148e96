// Writes an archive with web/static/js/export/zip.js to the path given, for
// tests/web/test_export_zip.py to open with Python's zipfile.
import { writeFileSync } from 'node:fs';

import { ZipWriter } from '../../web/static/js/export/zip.js';

const zip = new ZipWriter();
const when = new Date(2026, 10, 29, 12, 34, 56);
zip.add('README.txt', 'Ce dossier contient vos données.\n', { date: when });
zip.add('data.json', JSON.stringify({ text: 'Sortie jeudi 🚌' }), { date: when });
zip.add('files/photo élève.jpg', new Uint8Array(70000).map((_, i) => (i * 7) & 0xff), { date: when });
zip.add('files/empty', new Uint8Array(0), { date: when });
const parts = zip.finish();
writeFileSync(process.argv[2], Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
