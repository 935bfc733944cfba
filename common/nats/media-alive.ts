/**
 * The media-controller instances of a site, as their announcements (Subjects.mediaAlive) tell:
 * signaling follows them to adopt the bridges of one that is lost; a stopping instance asks whether
 * any other is there to adopt its own.
 */
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { checker } from '../config/check.js';
import { decodeChecked } from './codec.js';
import { MediaControllerAlive } from './media-contract.js';
import { Subjects } from './subjects.js';

const isMediaAlive = checker(MediaControllerAlive);

/** Calls `onAlive` with every well-formed announcement of the site's instances (others are ignored). */
export function watchMediaAlive(nc: NatsConnection, location: string, onAlive: (alive: MediaControllerAlive) => void): Subscription {
  return nc.subscribe(Subjects.mediaAliveAll(location), {
    callback: (err, msg) => {
      if (err) return;
      let alive: MediaControllerAlive;
      try {
        alive = decodeChecked(msg.data, isMediaAlive);
      } catch {
        return;
      }
      onAlive(alive);
    },
  });
}
