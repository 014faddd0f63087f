// The upload page: a thin layer over the client. Credentials stay in this tab's
// sessionStorage (or come once through the URL fragment); every upload, download and listing
// is the client's work.

import { UploaderClient, UploaderError } from '/client/uploader.js';

const CREDENTIALS_KEY = 'cloud-asset-uploader:credentials';
const PAGE_SIZE = 20;
const DOWNLOAD_LINK_SECONDS = 300;
const apiBase = document.querySelector('meta[name="uploader-api"]')?.content || location.origin;

const $ = (selector, root = document) => root.querySelector(selector);
const announcer = $('#announcer');
const activeKeys = new Set();

// --- credentials

/** A delegated token in `#token=…`: taken, then removed from the address bar and history. */
function tokenFromFragment() {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (!token) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return { kind: 'token', secret: token, source: 'link' };
}

function storedCredentials() {
  try {
    return JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) ?? 'null');
  } catch {
    return null;
  }
}

let credentials = tokenFromFragment() ?? storedCredentials();
if (credentials) sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));

function describeCredentials() {
  const status = $('#credentials-status');
  if (!credentials) status.textContent = 'No credentials: requests go without any. Kept for this tab only.';
  else if (credentials.source === 'link')
    status.textContent = 'Using the upload token from the link, for this tab only.';
  else
    status.textContent = `Using your ${credentials.kind === 'apiKey' ? 'API key' : 'bearer token'}, for this tab only.`;
}

function client() {
  if (credentials?.kind === 'apiKey')
    return new UploaderClient({ baseUrl: apiBase, apiKey: credentials.secret });
  return new UploaderClient({ baseUrl: apiBase, token: credentials?.secret });
}

$('#credentials').addEventListener('submit', (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  credentials = { kind: form.get('kind'), secret: String(form.get('secret')).trim(), source: 'form' };
  sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));
  $('#secret').value = '';
  describeCredentials();
  refreshAssets();
});

$('#forget').addEventListener('click', () => {
  credentials = null;
  sessionStorage.removeItem(CREDENTIALS_KEY);
  describeCredentials();
  refreshAssets();
});

// --- formatting

function formatBytes(bytes) {
  if (bytes == null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function formatEta(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return '';
  if (seconds < 60) return `${Math.ceil(seconds)} s left`;
  return `${Math.floor(seconds / 60)} min ${Math.ceil(seconds % 60)} s left`;
}

function describeError(error) {
  if (error instanceof UploaderError) return `${error.detail} (${error.code})`;
  return error?.message ?? String(error);
}

function announce(text) {
  announcer.textContent = text;
}

// --- downloads

/** A link to a signed download URL, signed again when clicked after it expired. */
function downloadLink(link, assetId, access) {
  const set = ({ url, expires_at: expiresAt }) => {
    link.href = url;
    link.dataset.expires = String(Date.parse(expiresAt));
  };
  if (access) set(access);
  link.addEventListener('click', async (event) => {
    if (link.href && Number(link.dataset.expires) - Date.now() > 5000) return;
    event.preventDefault();
    try {
      const fresh = await client().access(assetId, { expiresIn: DOWNLOAD_LINK_SECONDS });
      set(fresh);
      window.open(fresh.url, '_blank', 'noopener');
    } catch (error) {
      announce(`Download failed: ${describeError(error)}`);
    }
  });
}

// --- uploads

function uploadRow(file, key) {
  const row = $('#upload-row').content.firstElementChild.cloneNode(true);
  $('.name', row).textContent = key;
  const bar = $('progress', row);
  bar.max = Math.max(1, file.size);
  bar.setAttribute('aria-label', `Progress of ${key}`);
  $('.cancel', row).setAttribute('aria-label', `Cancel ${key}`);
  $('.retry', row).setAttribute('aria-label', `Retry ${key}`);
  $('.download', row).setAttribute('aria-label', `Download ${key}`);
  $('#uploads').prepend(row);
  return row;
}

function showProgress(row, key, { loaded, total, speed, eta }, milestones) {
  const bar = $('progress', row);
  bar.value = total === 0 ? bar.max : loaded;
  $('.bytes', row).textContent = `${formatBytes(loaded)} of ${formatBytes(total)}`;
  $('.speed', row).textContent = speed > 0 ? `${formatBytes(Math.round(speed))}/s` : '';
  $('.eta', row).textContent = loaded < total ? formatEta(eta) : '';
  const percent = total === 0 ? 100 : Math.floor((loaded / total) * 100);
  // Screen readers hear every quarter, not every progress event.
  while (milestones.length && percent >= milestones[0]) announce(`${key}: ${milestones.shift()} % uploaded`);
}

function setState(row, text, state) {
  $('.state', row).textContent = text;
  row.dataset.state = state;
  $('.cancel', row).hidden = state !== 'uploading';
  $('.retry', row).hidden = state !== 'failed' && state !== 'cancelled';
}

function startUpload(file) {
  const key = `${$('#prefix').value.trim()}${file.name}`;
  const row = uploadRow(file, key);
  if (activeKeys.has(key)) {
    setState(row, 'Already uploading under this key', 'failed');
    $('.retry', row).hidden = true;
    return;
  }
  let controller;
  const run = async () => {
    controller = new AbortController();
    activeKeys.add(key);
    setState(row, 'Uploading', 'uploading');
    announce(`Uploading ${key}`);
    const milestones = [25, 50, 75];
    try {
      const asset = await client().upload(file, {
        objectKey: key,
        signal: controller.signal,
        onProgress: (progress) => showProgress(row, key, progress, milestones),
      });
      setState(row, 'Uploaded', 'complete');
      announce(`${key} uploaded`);
      const link = $('.download', row);
      downloadLink(
        link,
        asset.asset_id,
        await client().access(asset.asset_id, { expiresIn: DOWNLOAD_LINK_SECONDS }),
      );
      link.hidden = false;
      refreshAssets();
    } catch (error) {
      const cancelled = error?.name === 'AbortError';
      setState(
        row,
        cancelled ? 'Cancelled' : `Failed: ${describeError(error)}`,
        cancelled ? 'cancelled' : 'failed',
      );
      announce(cancelled ? `${key} cancelled` : `${key} failed: ${describeError(error)}`);
    } finally {
      activeKeys.delete(key);
    }
  };
  $('.cancel', row).addEventListener('click', () => controller.abort());
  $('.retry', row).addEventListener('click', run);
  run();
}

$('#files').addEventListener('change', (event) => {
  [...event.target.files].forEach(startUpload);
  event.target.value = '';
});

const dropzone = $('#dropzone');
dropzone.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropzone.classList.add('dragging');
});
dropzone.addEventListener('dragleave', () => dropzone.classList.remove('dragging'));
dropzone.addEventListener('drop', (event) => {
  event.preventDefault();
  dropzone.classList.remove('dragging');
  [...event.dataTransfer.files].forEach(startUpload);
});

// --- the caller's assets

let cursor = null;
/** Bumped by every refresh, so a listing that a newer one overtook is dropped. */
let generation = 0;

function assetRow(asset) {
  const row = document.createElement('tr');
  const cells = [
    asset.object_key,
    asset.status,
    formatBytes(asset.stored_size ?? asset.content_length),
    asset.content_type ?? '—',
    new Date(asset.created_at).toLocaleString(),
  ];
  const labels = ['Key', 'Status', 'Size', 'Type', 'Created'];
  cells.forEach((text, i) => {
    const cell = document.createElement('td');
    cell.textContent = text;
    cell.dataset.label = labels[i];
    row.append(cell);
  });
  const actions = document.createElement('td');
  actions.className = 'row-actions';
  if (asset.status === 'complete') {
    const link = document.createElement('a');
    link.textContent = 'Download';
    link.href = '#';
    link.target = '_blank';
    link.rel = 'noopener';
    link.setAttribute('aria-label', `Download ${asset.object_key}`);
    downloadLink(link, asset.asset_id, null);
    actions.append(link);
  }
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = 'Delete';
  remove.setAttribute('aria-label', `Delete ${asset.object_key}`);
  remove.addEventListener('click', async () => {
    remove.disabled = true;
    try {
      await client().delete(asset.asset_id);
      row.remove();
      announce(`${asset.object_key} deleted`);
    } catch (error) {
      remove.disabled = false;
      announce(`Could not delete ${asset.object_key}: ${describeError(error)}`);
    }
  });
  actions.append(remove);
  row.append(actions);
  return row;
}

async function loadAssets() {
  const status = $('#assets-status');
  const started = generation;
  try {
    const page = await client().listPage({ limit: PAGE_SIZE, cursor: cursor ?? undefined });
    if (started !== generation) return;
    $('#assets tbody').append(...page.items.map(assetRow));
    cursor = page.next_cursor;
    $('#more').hidden = !cursor;
    const count = $('#assets tbody').rows.length;
    status.textContent = count === 0 ? 'No assets yet.' : `${count} asset${count === 1 ? '' : 's'} shown.`;
  } catch (error) {
    if (started === generation) status.textContent = `Could not list your assets: ${describeError(error)}`;
  }
}

function refreshAssets() {
  generation += 1;
  cursor = null;
  $('#assets tbody').replaceChildren();
  return loadAssets();
}

$('#refresh').addEventListener('click', refreshAssets);
$('#more').addEventListener('click', loadAssets);

describeCredentials();
refreshAssets();
