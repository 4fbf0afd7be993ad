import { chromium } from 'playwright-core';
export async function main(flags: string[]) {
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless=new','--no-sandbox','--disable-background-networking', ...flags] });
const ctx = await browser.newContext();
const [p1, p2] = [await ctx.newPage(), await ctx.newPage()];
await p1.goto('about:blank'); await p2.goto('about:blank');
await p1.evaluate(() => { const pc = new RTCPeerConnection(); (window as any).pc = pc; (window as any).cands = []; pc.onicecandidate = (e) => e.candidate && (window as any).cands.push(e.candidate.toJSON()); const ch = pc.createDataChannel('x'); (window as any).ch = ch; (window as any).opened = new Promise(r => ch.onopen = r); });
await p2.evaluate(() => { const pc = new RTCPeerConnection(); (window as any).pc = pc; (window as any).cands = []; pc.onicecandidate = (e) => e.candidate && (window as any).cands.push(e.candidate.toJSON()); (window as any).opened = new Promise(r => pc.ondatachannel = (e) => e.channel.onopen = r); });
const offer = await p1.evaluate(async () => { const pc = (window as any).pc; await pc.setLocalDescription(await pc.createOffer()); return pc.localDescription.toJSON(); });
const answer = await p2.evaluate(async (o) => { const pc = (window as any).pc; await pc.setRemoteDescription(o); await pc.setLocalDescription(await pc.createAnswer()); return pc.localDescription.toJSON(); }, offer);
await p1.evaluate(async (a) => { await (window as any).pc.setRemoteDescription(a); }, answer);
await new Promise(r => setTimeout(r, 1500));
const c1 = await p1.evaluate(() => (window as any).cands); const c2 = await p2.evaluate(() => (window as any).cands);
console.log('cands1', JSON.stringify(c1.map((c:any)=>c.candidate))); console.log('cands2', JSON.stringify(c2.map((c:any)=>c.candidate)));
await p1.evaluate(async (cs) => { for (const c of cs) await (window as any).pc.addIceCandidate(c); }, c2);
await p2.evaluate(async (cs) => { for (const c of cs) await (window as any).pc.addIceCandidate(c); }, c1);
const r = await Promise.race([p1.evaluate(() => (window as any).opened.then(() => 'open')), new Promise(r => setTimeout(() => r('timeout'), 8000))]);
console.log(flags.join(' '), '=>', r, await p1.evaluate(() => (window as any).pc.iceConnectionState));
await browser.close();
}
