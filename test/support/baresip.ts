/** Debian baresip as a test phone: its configuration, with a WAV file as microphone and a file as speaker. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface BaresipConfig {
  /** Its own SIP port on 127.0.0.1. */
  port: number;
  rtp: { min: number; max: number };
  /** The WAV it sends as its microphone. */
  tone: string;
  /** More config lines (certificates, say), before the modules. */
  extra?: string[];
}

/** Writes `<dir>/config`; what baresip hears goes to `<dir>/heard.wav`. No sound device needed. */
export function writeBaresipConfig(dir: string, c: BaresipConfig): void {
  writeFileSync(
    path.join(dir, 'config'),
    [
      'poll_method epoll',
      `sip_listen 127.0.0.1:${c.port}`,
      ...(c.extra ?? []),
      'module_path /usr/lib/baresip/modules',
      'module stdio.so',
      'module g711.so',
      'module aufile.so',
      'module_app account.so',
      'module_app menu.so',
      `audio_source aufile,${c.tone}`,
      `audio_player aufile,${path.join(dir, 'heard.wav')}`,
      `audio_alert aufile,${path.join(dir, 'alert.wav')}`,
      `rtp_ports ${c.rtp.min}-${c.rtp.max}`,
      '',
    ].join('\n'),
  );
}
