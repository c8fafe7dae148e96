// Attachments: prepared in the browser (photos re-encoded, which drops EXIF
// and GPS, plus a thumbnail), encrypted in 64 KiB chunks under a fresh file
// key, uploaded in parts; downloaded, checked and decrypted for display or
// saving. The node only ever sees ciphertext and sizes.

import * as G from '../e2e/groups.js';
import { b64urlDecode, b64urlEncode } from '../e2e/suite.js';
import { ApiError, api, csrfToken, messages } from '../pages/common.js';

const PHOTO_MAX = 2560;
const THUMB_MAX = 480;

export function kindOf(type) {
  if (/^image\/(jpeg|png|webp|gif|heic|heif|avif|bmp)$/.test(type)) return 'image';
  if (type.startsWith('video/')) return 'video';
  if (type.startsWith('audio/')) return 'audio';
  return 'file';
}

async function reencode(file, max, quality) {
  const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  const scale = Math.min(1, max / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement('canvas');
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
  return { blob, width: canvas.width, height: canvas.height };
}

/**
 * What will be encrypted for one picked or recorded file:
 * {kind, name, type, data: Blob, thumb: Blob|null, width?, height?}.
 * A photo is redrawn on a canvas: the JPEG that comes out carries no EXIF.
 */
export async function prepare(file, name = file.name) {
  const kind = kindOf(file.type);
  if (kind !== 'image') return { kind, name, type: file.type || 'application/octet-stream', data: file, thumb: null };
  const photo = await reencode(file, PHOTO_MAX, 0.88);
  const thumb = await reencode(photo.blob, THUMB_MAX, 0.8);
  const jpegName = name.replace(/\.[A-Za-z0-9]{1,5}$/, '') + '.jpg';
  return { kind, name: jpegName, type: 'image/jpeg', data: photo.blob, thumb: thumb.blob, width: photo.width, height: photo.height };
}

async function putPart(blobId, offset, bytes) {
  const response = await fetch(`/api/v1/blobs/${blobId}?offset=${offset}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'X-CSRF-Token': csrfToken(), Accept: 'application/json' },
    credentials: 'same-origin',
    body: bytes,
  });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
}

/** Encrypt and upload one Blob → a descriptor without name/type/kind (the caller adds them). */
export async function encryptAndUpload(classId, data, onProgress = () => {}) {
  const { key, prefix } = G.newFileKey();
  const size = data.size;
  const ctSize = G.ciphertextSize(size);
  const ciphertext = new Uint8Array(ctSize);
  let offset = 0;
  for await (const chunk of G.encryptChunks(key, prefix, data)) {
    ciphertext.set(chunk, offset);
    offset += chunk.length;
  }
  const sha = await G.sha256B64(ciphertext);
  const started = await api(`/classes/${classId}/blobs`, { size: ctSize });
  // parts of whole chunks, within the node's request limit
  const step = Math.max(1, Math.floor(started.part_bytes / (G.CHUNK_SIZE + G.TAG))) * (G.CHUNK_SIZE + G.TAG);
  for (let start = 0; start < ctSize; start += step) {
    await putPart(started.id, start, ciphertext.subarray(start, Math.min(ctSize, start + step)));
    onProgress(Math.min(ctSize, start + step) / ctSize);
  }
  await api(`/blobs/${started.id}/complete`, { sha256: sha });
  return { blob: started.id, key: b64urlEncode(key), prefix: b64urlEncode(prefix), size, ct_sha256: sha };
}

/** Upload a prepared file (and its thumbnail) → {descriptor, blobIds}. */
export async function uploadPrepared(classId, prepared, onProgress) {
  const blobIds = [];
  let thumb = null;
  if (prepared.thumb) {
    thumb = { ...(await encryptAndUpload(classId, prepared.thumb)), type: 'image/jpeg', name: 'thumbnail.jpg', kind: 'image', thumb: null };
    blobIds.push(thumb.blob);
  }
  const main = await encryptAndUpload(classId, prepared.data, onProgress);
  blobIds.push(main.blob);
  const descriptor = { ...main, type: prepared.type, name: prepared.name, kind: prepared.kind, thumb };
  return { descriptor, blobIds };
}

/** Every blob id a post's descriptors reference (to keep them on edit). */
export function blobIdsOf(attachments) {
  return attachments.flatMap((d) => [d.blob, ...(d.thumb ? [d.thumb.blob] : [])]);
}

const cache = new Map();

/** Download, check and decrypt an attachment → an object URL for a Blob of its type. */
export async function openAttachment(descriptor) {
  if (cache.has(descriptor.blob)) return cache.get(descriptor.blob);
  const promise = (async () => {
    const response = await fetch(`/api/v1/blobs/${encodeURIComponent(descriptor.blob)}`, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(messages().failed || 'download failed');
    const ct = new Uint8Array(await response.arrayBuffer());
    if ((await G.sha256B64(ct)) !== descriptor.ct_sha256) throw new Error('the file was altered');
    const plain = await G.decryptFile(b64urlDecode(descriptor.key), b64urlDecode(descriptor.prefix), descriptor.size, ct);
    return URL.createObjectURL(new Blob([plain], { type: safeType(descriptor.type) }));
  })();
  cache.set(descriptor.blob, promise);
  promise.catch(() => cache.delete(descriptor.blob));
  return promise;
}

/** Types a blob: URL may carry; anything else downloads as bytes (never rendered as HTML). */
function safeType(type) {
  return /^(image\/(jpeg|png|webp|gif|avif)|video\/[\w.+-]+|audio\/[\w.+-]+|application\/pdf)$/.test(type || '')
    ? type
    : 'application/octet-stream';
}

/** Save a decrypted attachment under its real name. */
export async function download(descriptor) {
  const url = await openAttachment(descriptor);
  const a = document.createElement('a');
  a.href = url;
  a.download = descriptor.name || 'file';
  document.body.append(a);
  a.click();
  a.remove();
}

export function humanSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(0)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
