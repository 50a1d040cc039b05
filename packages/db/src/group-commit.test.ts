import { expect } from 'chai';
import { chunksOf } from './group-commit.ts';

describe('chunksOf', () => {
  it('keeps the order and cuts before the item that would pass the limit', () => {
    expect(chunksOf([3, 1, 2, 4, 1], (n) => n, 4)).to.deep.equal([[3, 1], [2], [4], [1]]);
    expect(chunksOf([1, 1, 1], (n) => n, 10)).to.deep.equal([[1, 1, 1]]);
    expect(chunksOf([], (n: number) => n, 10)).to.deep.equal([]);
  });

  it('gives an item heavier than the limit a run of its own', () => {
    expect(chunksOf([1, 9, 1], (n) => n, 4)).to.deep.equal([[1], [9], [1]]);
  });
});
