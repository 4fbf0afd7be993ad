// The "Train together" panel: join a data-parallel session by its URL (from `npm run coordinator`,
// or a link with ?join=… that someone shared), show the link to share, the replicas in the session
// and how fast each computes. The worker does the training (together-worker.ts).

import type { TogetherStatus } from './protocol';

export class TogetherPanel {
  private readonly input: HTMLInputElement;
  private readonly button: HTMLButtonElement;
  private readonly status: HTMLElement;
  private readonly share: HTMLElement;
  private readonly shareLink: HTMLAnchorElement;
  private readonly peers: HTMLTableElement;
  private joined = false;

  constructor(card: HTMLElement, request: (url: string | null) => void) {
    card.replaceChildren();
    const h2 = el('h2', 'Train together');
    const intro = el(
      'p',
      'Several tabs, computers and Node processes can train this model as one: each computes the gradients of its ' +
        'share of every batch, they add them up, and all apply the same update. Start a coordinator with ',
    );
    intro.append(el('code', 'npm run coordinator'), ', paste its join URL here, and press Train.');
    intro.className = 'hint';
    // The URL under its name, as the training controls are, with the button beside it.
    const join = document.createElement('div');
    join.className = 'join';
    const label = el('label', 'Session URL');
    this.input = document.createElement('input');
    this.input.type = 'text';
    this.input.placeholder = 'ws://HOST:PORT/SESSION?token=…';
    this.input.dataset.testid = 'together-url';
    this.input.spellcheck = false;
    label.append(this.input);
    this.button = el('button', 'Join');
    this.button.type = 'button';
    this.button.dataset.testid = 'together-join';
    join.append(label, this.button);
    this.status = el('p', 'Training alone.');
    this.status.id = 'together-status';
    this.status.dataset.testid = 'together-status';
    this.share = el('p', 'Share this link to let others join (it holds the session token): ');
    this.share.id = 'together-share';
    this.share.className = 'detail';
    this.shareLink = document.createElement('a');
    this.shareLink.dataset.testid = 'together-link';
    this.share.append(this.shareLink);
    this.share.hidden = true;
    this.peers = document.createElement('table');
    this.peers.className = 'profile';
    this.peers.dataset.testid = 'together-peers';
    this.peers.hidden = true;
    card.append(h2, intro, join, this.status, this.share, this.peers);

    this.button.onclick = () => {
      if (this.joined) request(null);
      else if (this.input.value.trim()) request(this.input.value.trim());
    };
    // A shared link: ?join=ws://… fills in the session and asks to join it.
    const fromLink = new URLSearchParams(location.search).get('join');
    if (fromLink) {
      this.input.value = fromLink;
      request(fromLink);
    }
  }

  show(s: TogetherStatus): void {
    this.joined = s.url !== null;
    this.button.textContent = this.joined ? 'Leave' : 'Join';
    this.input.disabled = this.joined;
    const words: Record<TogetherStatus['state'], string> = {
      off: 'Training alone.',
      waiting: s.detail,
      joined: s.detail,
      failed: `Could not train together: ${s.detail}`,
    };
    this.status.textContent = words[s.state];
    this.status.className = s.state === 'failed' ? 'error' : '';
    if (s.url) {
      const link = new URL(location.href);
      link.searchParams.set('join', s.url);
      this.shareLink.href = link.toString();
      this.shareLink.textContent = link.toString();
    }
    this.share.hidden = !s.url;
    this.peers.hidden = s.peers.length === 0;
    const head = this.peers.createTHead();
    head.replaceChildren();
    const hr = head.insertRow();
    for (const h of ['replica', 'rank', 'computes at']) hr.append(el('th', h));
    const body = this.peers.tBodies[0] ?? this.peers.createTBody();
    body.replaceChildren();
    for (const p of s.peers) {
      const row = body.insertRow();
      const who = `${p.name}${p.isSelf ? ' (this tab)' : ''}${p.isLeader ? ', leader' : ''}`;
      const rank = p.joining ? 'joins at the next step' : p.rank >= 0 ? String(p.rank) : '—';
      const speed = p.samplesPerSecond > 0 ? `${Math.round(p.samplesPerSecond).toLocaleString('en')} samples/s` : '—';
      for (const v of [who, rank, speed]) row.insertCell().textContent = v;
    }
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  return e;
}
