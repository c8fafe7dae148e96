// Files an actionable post's reader makes in their browser, with the decrypted
// labels the node never sees: the teacher's CSV export of the answers, and an
// event's .ics for "Add to my calendar" (RFC 5545: CRLF, lines folded at 75
// octets). Offered as downloads through a Blob URL; nothing is sent anywhere.

function el(tag, attrs) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export function csvCell(value) {
  const text = String(value ?? '');
  // a leading = + - @ would run as a formula in a spreadsheet
  const safe = /^[=+\-@]/.test(text) ? `'${text}` : text;
  return /[",\n;]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

function save(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function fileName(title, ext) {
  return `${title.replace(/[^\p{L}\p{N}]+/gu, '-').replace(/^-|-$/g, '').slice(0, 60) || 'carnet'}.${ext}`;
}

/** The teacher's export: one row per child (child, guardian who answered, answer, date). */
export function downloadCsv(title, rows, msgs) {
  const header = [msgs.csv_child, msgs.csv_guardian, msgs.csv_answer, msgs.csv_date];
  const text = [header, ...rows].map((r) => r.map(csvCell).join(',')).join('\r\n');
  save(fileName(title, 'csv'), 'text/csv;charset=utf-8', `\ufeff${text}\r\n`); // BOM: spreadsheets read UTF-8
}

function icsText(value) {
  return String(value).replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\n/g, '\\n');
}

export function icsFold(line) {
  const bytes = new TextEncoder();
  const out = [];
  let current = '';
  for (const ch of line) {
    const limit = out.length ? 74 : 75;
    if (bytes.encode(current + ch).length > limit) { out.push(current); current = ''; }
    current += ch;
  }
  out.push(current);
  return out.join('\r\n ');
}

const stamp = (iso) => new Date(iso).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
const day = (iso, plus = 0) => new Date(Date.parse(iso) + plus * 86_400_000).toISOString().slice(0, 10).replace(/-/g, '');

/** "Add to my calendar": an .ics with the decrypted title and place, made here, never sent anywhere. */
export function downloadEvent(item, labels, msgs) {
  const a = item.action;
  const lines = ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//Carnet//Class event//EN', 'BEGIN:VEVENT',
    `UID:${item.id}@${location.host}`, `DTSTAMP:${stamp(new Date().toISOString())}`];
  if (a.all_day) {
    lines.push(`DTSTART;VALUE=DATE:${day(a.starts_at)}`, `DTEND;VALUE=DATE:${day(a.ends_at || a.starts_at, 1)}`);
  } else {
    lines.push(`DTSTART:${stamp(a.starts_at)}`, `DTEND:${stamp(a.ends_at || new Date(Date.parse(a.starts_at) + 3_600_000).toISOString())}`);
  }
  lines.push(`SUMMARY:${icsText(labels.title || msgs.kind_event)}`);
  if (labels.place) lines.push(`LOCATION:${icsText(labels.place)}`);
  lines.push(`URL:${location.origin}/classes/${item.class_id}/feed#m-${item.id}`, 'END:VEVENT', 'END:VCALENDAR');
  save(fileName(labels.title || 'event', 'ics'), 'text/calendar;charset=utf-8', `${lines.map(icsFold).join('\r\n')}\r\n`);
}
