/**
 * The order training visits examples in: a seeded shuffle per epoch, consumed micro-batch by micro-batch. An
 * optimiser step takes up to `gradAccum` micro-batches and ends early at an epoch's end (as Hugging Face's Trainer
 * does), so every epoch covers every example exactly once. The whole state is a few numbers and the current
 * permutation, which checkpoints save.
 */
import { Rng } from "../util/random";

/** Optimiser steps in one epoch of `size` examples. */
export function stepsPerEpoch(size: number, batchSize: number, gradAccum: number): number {
  return Math.ceil(Math.ceil(size / batchSize) / gradAccum);
}

/** The saved state of a data order. */
export interface DataOrderState {
  rng: number;
  epoch: number;
  order: number[];
  position: number;
}

/** Walks a dataset of `size` examples in seeded random order. */
export class DataOrder {
  private rng: Rng;
  epoch = 0;
  order: number[];
  position = 0;

  constructor(readonly size: number, readonly batchSize: number, readonly gradAccum: number, seed: number, state?: DataOrderState) {
    this.rng = new Rng(seed);
    if (state) {
      this.rng.state = state.rng;
      this.epoch = state.epoch;
      this.order = [...state.order];
      this.position = state.position;
    } else {
      this.order = this.shuffled();
    }
  }

  /** The example indices of the next step's micro-batches. */
  nextStep(): number[][] {
    const micro: number[][] = [];
    while (micro.length < this.gradAccum && this.position < this.size) {
      micro.push(this.order.slice(this.position, this.position + this.batchSize));
      this.position += this.batchSize;
    }
    if (this.position >= this.size) {
      this.epoch++;
      this.order = this.shuffled();
      this.position = 0;
    }
    return micro;
  }

  /** The state to save. */
  state(): DataOrderState {
    return { rng: this.rng.state, epoch: this.epoch, order: [...this.order], position: this.position };
  }

  private shuffled(): number[] {
    return this.rng.shuffle(Array.from({ length: this.size }, (_, i) => i));
  }
}
