package org.fedrec;

/**
 * A ranked list: items[j] with scores[j] (recommendations: the rank
 * score; explanations: the leave-one-out effect of the user's own
 * interaction). Both arrays have the same length.
 */
public final class Ranked {
    public final int[] items;
    public final float[] scores;

    Ranked(int[] items, float[] scores) {
        this.items = items;
        this.scores = scores;
    }

    public int size() {
        return items.length;
    }
}
