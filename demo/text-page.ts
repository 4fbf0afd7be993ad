// The page's Text mode: a small GPT learns a text (Moby Dick, first names, or one pasted here) in
// its Worker (text-worker.ts); this shows its curves and readouts, streams its samples as they are
// written, and sends the person's requests (text-protocol.ts).

import type { DeviceInfo, MemoryStats } from '../src/index';
import { showAdapters, showDevice } from './device-panel';
import { $, backendChoice, downloadFile, formatDate, memoryText, planText, selectValue, showUnavailable } from './page-shared';
import type { RunState } from './protocol';
import { TextCharts } from './text-charts';
import { DEFAULT_LR, type FromTextWorker, type HeldOutPoint, type TextConfig, type TextInfo, type TextSize, type TextSource, type ToTextWorker } from './text-protocol';

/** The loss readout averages this many recent steps. */
const LOSS_WINDOW = 10;
/** Samples kept on the page, newest first. */
const SAMPLES_SHOWN = 4;

export function startTextDemo(): void {
  const controls = {
    source: $<HTMLSelectElement>('text-source'),
    size: $<HTMLSelectElement>('text-size'),
    lr: $<HTMLInputElement>('text-lr'),
    batchSize: $<HTMLSelectElement>('text-batch-size'),
    microBatch: $<HTMLSelectElement>('text-micro-batch'),
    pasted: $<HTMLTextAreaElement>('text-pasted'),
    prompt: $<HTMLInputElement>('text-prompt'),
    temperature: $<HTMLInputElement>('text-temperature'),
  };
  const buttons = {
    train: $<HTMLButtonElement>('text-train'),
    pause: $<HTMLButtonElement>('text-pause'),
    reset: $<HTMLButtonElement>('text-reset'),
    usePasted: $<HTMLButtonElement>('text-use'),
    gpt2: $<HTMLInputElement>('text-gpt2'),
    generate: $<HTMLButtonElement>('text-generate'),
    download: $<HTMLButtonElement>('text-download'),
    load: $<HTMLInputElement>('text-load'),
  };
  const worker = new Worker(new URL('./text-worker.ts', import.meta.url), { type: 'module', name: 'webgrad text training' });
  const post = (msg: ToTextWorker, transfer: Transferable[] = []): void => worker.postMessage(msg, transfer);
  const charts = new TextCharts($('text-loss-chart'), $('text-speed-chart'));
  let runState: RunState = 'starting';
  let hasModel = false;
  let trainedSteps = 0;
  let recentLosses: number[] = [];
  let firstLosses: number[] = [];
  let text: TextInfo | null = null;
  /** The text the model in place trains on (the selector may show another, a paste not yet used). */
  let modelSource: TextSource | null = null;
  let deviceInfo: DeviceInfo | null = null;

  const readConfig = (): TextConfig => {
    const micro = controls.microBatch.value;
    return {
      source: controls.source.value as TextSource,
      size: controls.size.value as TextSize,
      lr: Number(controls.lr.value),
      batchSize: Number(controls.batchSize.value),
      microBatchSize: micro === 'auto' ? 'auto' : Number(micro),
    };
  };
  const writeConfig = (c: TextConfig): void => {
    controls.source.value = c.source;
    controls.size.value = c.size;
    controls.lr.value = String(c.lr);
    selectValue(controls.batchSize, String(c.batchSize));
    selectValue(controls.microBatch, String(c.microBatchSize));
    showPasteBox();
  };
  const temperature = (): number => Number(controls.temperature.value);
  const showPasteBox = (): void => {
    $('text-paste').hidden = controls.source.value !== 'pasted';
  };

  const updateControls = (): void => {
    const idle = runState === 'ready' || runState === 'paused';
    const training = runState === 'training';
    const otherText = modelSource !== null && controls.source.value !== modelSource;
    buttons.train.disabled = !idle || !hasModel || otherText || !controls.lr.checkValidity() || !(Number(controls.lr.value) > 0);
    buttons.pause.disabled = !training;
    buttons.reset.disabled = !(idle || training);
    buttons.download.disabled = !hasModel || !(idle || training);
    buttons.load.disabled = !idle;
    buttons.gpt2.disabled = !idle;
    buttons.generate.disabled = !hasModel || !(idle || training);
    // The text and the model's size are fixed once it has learned something; Reset starts over.
    const fresh = trainedSteps === 0;
    controls.source.disabled = !idle || !fresh;
    controls.size.disabled = !idle || !fresh;
    buttons.usePasted.disabled = !idle || !fresh;
    for (const c of [controls.lr, controls.batchSize, controls.microBatch]) c.disabled = !idle;
    $('text-controls-hint').textContent = training
      ? 'Pause to change the settings.'
      : idle && !fresh
        ? 'Reset to choose another text or model size.'
        : otherText
          ? 'Paste a text and press “Use this text” to make a model for it.'
          : '';
  };

  const setStatus = (state: RunState, detail: string, progress?: number): void => {
    runState = state;
    const status = $('text-status');
    status.dataset.state = state;
    const bar = $<HTMLProgressElement>('text-status-progress');
    bar.hidden = progress === undefined;
    if (progress !== undefined) bar.value = progress;
    const words: Record<RunState, string> = {
      starting: 'Starting…',
      ready: hasModel ? 'Ready: press Train.' : 'Choose a text.',
      training: 'Training…',
      pausing: 'Pausing after this step…',
      paused: 'Paused. Train continues where it stopped.',
      busy: 'Working…',
    };
    status.textContent = detail || words[state];
    updateControls();
  };

  const showError = (message: string | null): void => {
    const el = $('text-error');
    el.hidden = message === null;
    el.textContent = message ?? '';
  };

  /** The loss is per token: "char" for the page's character models, "token" for GPT-2's. */
  const unit = (): string => (text?.unit === 'token' ? 'token' : 'char');
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const showLoss = (): void => {
    $('text-loss').textContent = recentLosses.length ? mean(recentLosses).toFixed(3) : '—';
    $('text-loss-start').textContent = firstLosses.length
      ? `nats/${unit()} (mean of the last ${recentLosses.length} steps; it started at ${mean(firstLosses).toFixed(3)})`
      : '';
  };
  const addLoss = (loss: number): void => {
    if (firstLosses.length < LOSS_WINDOW) firstLosses.push(loss);
    recentLosses.push(loss);
    if (recentLosses.length > LOSS_WINDOW) recentLosses.shift();
  };
  const showHeldOut = (p: HeldOutPoint | undefined): void => {
    $('text-held-out').textContent = p ? p.loss.toFixed(3) : '—';
    const bigram = text ? `the bigram baseline: ${text.bigram.toFixed(3)}` : '';
    $('text-held-out-detail').textContent = p
      ? `nats/${unit()} (${p.bitsPerChar.toFixed(2)} bits/char) at step ${p.step}; ${bigram}`
      : text
        ? `(every 25 steps and on pause; ${bigram})`
        : '';
  };
  const showSpeed = (tokensPerSecond: number | undefined, detail = ''): void => {
    $('text-speed').textContent = tokensPerSecond ? `${Math.round(tokensPerSecond).toLocaleString('en')} tokens/s` : '—';
    $('text-speed-detail').textContent = tokensPerSecond ? detail : '';
  };
  const showMemory = (m: MemoryStats, during: 'step' | 'idle'): void => {
    [$('text-memory').textContent, $('text-memory-detail').textContent] = memoryText(m, during, 'the model, its optimizer’s state and the text');
  };

  // ---- samples ----
  const samples = $<HTMLOListElement>('text-samples');
  const streaming = new Map<number, HTMLElement>();
  const startSample = (msg: Extract<FromTextWorker, { type: 'sample-start' }>): void => {
    const li = document.createElement('li');
    li.dataset.state = 'streaming';
    li.dataset.id = String(msg.id);
    const head = document.createElement('p');
    head.className = 'detail';
    head.textContent = `${msg.requested ? 'Asked for' : 'Written'} at step ${msg.step}, temperature ${msg.temperature}`;
    const pre = document.createElement('pre');
    const prompt = document.createElement('span');
    prompt.className = 'prompt';
    prompt.textContent = msg.prompt;
    const written = document.createElement('span');
    written.className = 'written';
    written.dataset.testid = 'sample-text';
    pre.append(prompt, written);
    li.append(head, pre);
    samples.prepend(li);
    while (samples.children.length > SAMPLES_SHOWN) samples.lastElementChild!.remove();
    streaming.set(msg.id, written);
  };

  worker.onmessage = (ev: MessageEvent<FromTextWorker>) => {
    const msg = ev.data;
    switch (msg.type) {
      case 'device':
        deviceInfo = msg.info;
        showDevice($('device'), msg.info);
        break;
      case 'adapters':
        if (deviceInfo) showAdapters($('device'), deviceInfo, msg.adapters);
        break;
      case 'unavailable':
        worker.terminate();
        showUnavailable(msg.message);
        break;
      case 'status':
        setStatus(msg.state, msg.detail, msg.progress);
        break;
      case 'model': {
        showError(null);
        hasModel = true;
        text = msg.text;
        modelSource = msg.config.source;
        // Samples of the model that was in place go with it (one cut short included).
        samples.replaceChildren();
        streaming.clear();
        writeConfig(msg.config);
        trainedSteps = msg.step;
        firstLosses = msg.history.loss.slice(0, LOSS_WINDOW).map(([, l]) => l);
        recentLosses = msg.history.loss.slice(-LOSS_WINDOW).map(([, l]) => l);
        $('text-step').textContent = String(msg.step);
        $('text-lr-now').textContent = '';
        showLoss();
        showHeldOut(msg.history.heldOut.at(-1));
        showSpeed(msg.history.speed.at(-1)?.[1], '(when it last trained)');
        showMemory(msg.memory, 'idle');
        [$('text-plan').textContent, $('text-plan-reason').textContent] = planText(msg.plan, 'sequences');
        charts.reset(msg.history, msg.text.bigram);
        const t = msg.text;
        $('text-data').textContent = `${t.title}: ${t.trainTokens.toLocaleString('en')} ${t.unit}s to train on, ${t.heldOutTokens.toLocaleString('en')} held out; ${t.vocabulary}`;
        controls.prompt.placeholder = `empty: ${JSON.stringify(t.defaultPrompt)}`;
        const s = msg.shape;
        const l = msg.lora;
        const what = l
          ? `GPT-2 from ${l.fileName}: ${s.layers} blocks, ${s.heads} head${s.heads === 1 ? '' : 's'}, width ${s.dim}, context ${s.context} (${msg.parameters.toLocaleString('en')} parameters), ` +
            `LoRA rank ${l.rank} on ${l.layers} layers: ${l.trainable.toLocaleString('en')} trainable (${((100 * l.trainable) / msg.parameters).toFixed(2)}%), ` +
            `the rest frozen${l.frozenF16 ? ' in f16' : ''}; on ${t.title}`
          : `GPT of ${s.layers} layer${s.layers === 1 ? '' : 's'}, ${s.heads} head${s.heads === 1 ? '' : 's'}, width ${s.dim}, context ${s.context} (${msg.parameters.toLocaleString('en')} parameters) on ${t.title}`;
        const trained = msg.step > 0 ? `${msg.step} steps trained` : 'untrained';
        const o = msg.origin;
        $('text-model-note').textContent =
          o.kind === 'restored'
            ? `Restored model from ${formatDate(o.savedAt)}: ${what}, ${trained}.`
            : o.kind === 'file'
              ? `Loaded ${o.fileName}: ${what}, ${trained}.`
              : o.kind === 'gpt2'
                ? `Fine-tuning ${what}.`
                : `New model: ${what}.`;
        $('text-stored-note').textContent = l ? 'Not kept in this browser (the base model is too large): download the adapters to keep them.' : '';
        updateControls();
        break;
      }
      case 'step':
        trainedSteps = msg.step;
        $('text-step').textContent = String(msg.step);
        $('text-lr-now').textContent = `(learning rate ${msg.lr.toPrecision(2)})`;
        addLoss(msg.loss);
        showLoss();
        charts.addLoss(msg.step, msg.loss);
        charts.addSpeed(msg.step, msg.tokensPerSecond);
        showSpeed(msg.tokensPerSecond);
        showMemory(msg.memory, 'step');
        break;
      case 'plan':
        [$('text-plan').textContent, $('text-plan-reason').textContent] = planText(msg.plan, 'sequences');
        break;
      case 'held-out':
        showHeldOut(msg.point);
        charts.addHeldOut(msg.point);
        break;
      case 'sample-start':
        startSample(msg);
        break;
      case 'sample-text': {
        const el = streaming.get(msg.id);
        if (el) el.textContent += msg.text;
        break;
      }
      case 'sample-end': {
        const el = streaming.get(msg.id);
        streaming.delete(msg.id);
        if (el) el.closest('li')!.dataset.state = 'done';
        break;
      }
      case 'checkpoint':
        downloadFile(msg.bytes, msg.fileName);
        break;
      case 'stored':
        $('text-stored-note').textContent = `Kept in this browser at ${formatDate(msg.savedAt)}: a reload continues from here.`;
        break;
      case 'error':
        showError(msg.message);
        break;
    }
  };
  worker.onerror = (ev) => showError(`The text worker failed: ${ev.message || 'it could not be started'}`);

  const sampling = (): void => post({ type: 'sampling', prompt: controls.prompt.value, temperature: temperature() });
  buttons.train.onclick = () => {
    showError(null);
    sampling();
    post({ type: 'train', config: readConfig() });
  };
  buttons.pause.onclick = () => post({ type: 'pause' });
  buttons.reset.onclick = () => post({ type: 'reset', config: readConfig(), pasted: controls.pasted.value });
  buttons.usePasted.onclick = () => post({ type: 'reset', config: readConfig(), pasted: controls.pasted.value });
  buttons.generate.onclick = () => {
    showError(null);
    post({ type: 'sample', prompt: controls.prompt.value, temperature: temperature() });
  };
  buttons.download.onclick = () => post({ type: 'download' });
  const fineTune = async (file: File): Promise<void> => {
    showError(null);
    const bytes = new Uint8Array(await file.arrayBuffer());
    post({ type: 'gpt2', bytes, fileName: file.name, config: readConfig(), pasted: controls.pasted.value }, [bytes.buffer]);
  };
  buttons.gpt2.onchange = async () => {
    const file = buttons.gpt2.files?.[0];
    buttons.gpt2.value = '';
    if (file) await fineTune(file);
  };
  // A model.safetensors dropped on the training card is fine-tuned as if chosen with the button.
  const card = $('text-training-card');
  card.ondragover = (e) => {
    if (buttons.gpt2.disabled || !e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    card.classList.add('dropping');
  };
  card.ondragleave = () => card.classList.remove('dropping');
  card.ondrop = (e) => {
    card.classList.remove('dropping');
    const file = e.dataTransfer?.files[0];
    if (!file || buttons.gpt2.disabled) return;
    e.preventDefault();
    void fineTune(file);
  };
  buttons.load.onchange = async () => {
    const file = buttons.load.files?.[0];
    if (!file) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    buttons.load.value = '';
    post({ type: 'load', bytes, fileName: file.name, pasted: controls.pasted.value }, [bytes.buffer]);
  };
  // A new model when the text or size changes before any training (a pasted text: with its button).
  controls.source.onchange = () => {
    showPasteBox();
    updateControls();
    if (controls.source.value !== 'pasted') post({ type: 'reset', config: readConfig(), pasted: '' });
  };
  controls.size.onchange = () => {
    controls.lr.value = String(DEFAULT_LR[readConfig().size]);
    if (controls.source.value !== 'pasted' || controls.pasted.value.trim()) post({ type: 'reset', config: readConfig(), pasted: controls.pasted.value });
  };
  controls.lr.oninput = updateControls;
  controls.temperature.oninput = () => {
    $('text-temperature-value').textContent = temperature().toFixed(2);
    sampling();
  };
  controls.prompt.onchange = sampling;
  controls.prompt.onkeydown = (e) => {
    if (e.key === 'Enter' && !buttons.generate.disabled) buttons.generate.click();
  };

  showPasteBox();
  post({ type: 'start', config: readConfig(), backend: backendChoice(), pasted: controls.pasted.value });
}
