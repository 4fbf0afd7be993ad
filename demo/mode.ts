// The page's two modes, Digits (MNIST) and Text (a small GPT), switched by the tabs under the
// title. The mode shown is in the address (?mode=text), so a reload or a shared link opens it;
// each mode's cards carry data-mode and the stylesheet hides the other mode's. A mode's worker
// starts the first time the mode is shown, so a visit to one never loads the other's data.

export type Mode = 'mnist' | 'text';
const MODES: readonly Mode[] = ['mnist', 'text'];

export function setUpModes(start: Record<Mode, () => void>): void {
  const started = new Set<Mode>();
  const tabs = MODES.map((m) => document.getElementById(`mode-${m}`) as HTMLButtonElement);
  const show = (mode: Mode): void => {
    document.body.dataset.mode = mode;
    tabs.forEach((t, i) => t.setAttribute('aria-selected', String(MODES[i] === mode)));
    const url = new URL(location.href);
    if (mode === 'mnist') url.searchParams.delete('mode');
    else url.searchParams.set('mode', mode);
    history.replaceState(null, '', url);
    if (!started.has(mode)) {
      started.add(mode);
      start[mode]();
    }
  };
  tabs.forEach((t, i) => (t.onclick = () => show(MODES[i]!)));
  const asked = new URLSearchParams(location.search).get('mode');
  show(asked === 'text' ? 'text' : 'mnist');
}
