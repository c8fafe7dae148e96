// The school group emergency alerts are encrypted to, opened for the export:
// the node's signed log verified here against what the alerts page of this
// browser pinned (its admins and newest head: a node cannot roll it back or
// swap the emergency role), then this guardian's epoch keys opened. Reading
// only: the pins are the alerts page's to write (web/static/js/pages/alerts.js).

import * as G from '../e2e/groups.js';
import { api } from '../pages/common.js';

function readPin(key) {
  try {
    return JSON.parse(localStorage.getItem(key) || 'null');
  } catch {
    return null;
  }
}

/** The alerts page's pin of a group (by id; the own school's also under its older key). */
function pinOf(accountId, groupId, own) {
  const base = `carnet-pin|${location.origin}|${accountId}|school-group`;
  const pin = readPin(`${base}|${groupId}`);
  if (pin) return pin;
  const legacy = own ? readPin(base) : null;
  return legacy && legacy.group === groupId ? legacy : null;
}

/** → {state, epochKeys} of the group an alert names (null: the own school's), or {state: null}. */
export async function openSchoolGroup(keys, accountId, groupId, own) {
  const view = await api(groupId ? `/school-group?group=${encodeURIComponent(groupId)}` : '/school-group');
  if (groupId && view.group_id !== null && view.group_id !== groupId) throw new Error('another group was served');
  if (view.group_id === null || !view.entries.length) return { state: null, epochKeys: new Map() };
  const pin = pinOf(accountId, view.group_id, own);
  const state = await G.verifyLog(view.entries, { pinnedAdmins: pin ? pin.admins : null, knownHead: pin ? pin.head : null });
  if (state.group !== view.group_id || state.history !== 'from_join') throw new Error('not a school group');
  const epochKeys = new Map();
  for (const envelope of [...view.envelopes].sort((a, b) => b.epoch - a.epoch)) {
    const commit = state.epochs[envelope.epoch]?.commit;
    if (epochKeys.has(envelope.epoch) || !commit) continue;
    try {
      const key = await G.openEpochKey(state.group, envelope, view.me, keys.enc, keys.encPk, commit);
      for (const [epoch, k] of await G.epochKeysFrom(state, envelope.epoch, key)) epochKeys.set(epoch, k);
    } catch (err) {
      console.warn('an alert key envelope did not open', err);
    }
  }
  return { state, epochKeys };
}
