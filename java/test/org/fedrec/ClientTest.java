package org.fedrec;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.HashSet;
import java.util.Set;

/**
 * The JNI bindings against a real fedrec-aggregator (started by
 * run-test.sh, secure aggregation on as by default): two devices in two
 * threads take part in rounds over NNG, then recommend, re-rank, explain,
 * save and restore; bad input gets the documented exceptions.
 * Usage: ClientTest URL AGG.pub WORKDIR. Exit 0 when every check passes.
 */
public final class ClientTest {
    static final int ITEMS = 200;
    static int checks = 0;

    static void check(boolean ok, String what) {
        checks++;
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
    }

    interface Call {
        void run();
    }

    static void throwsFedrec(String name, Call c, String what) {
        try {
            c.run();
        } catch (FedrecException e) {
            check(e.errorName().equals(name),
                    what + ": " + e.errorName() + " instead of " + name);
            return;
        }
        check(false, what + ": no FedrecException");
    }

    static void throwsType(Class<?> type, Call c, String what) {
        try {
            c.run();
        } catch (RuntimeException e) {
            check(type.isInstance(e), what + ": " + e);
            return;
        }
        check(false, what + ": no " + type.getSimpleName());
    }

    // User u rates 40 items of its own slice of the catalog; its taste
    // (high or low) depends on the item's parity.
    static void rate(FedrecClient c, int u) {
        for (int j = 0; j < 40; j++) {
            int item = (u * 37 + j * 3) % ITEMS;
            float r = (item % 2 == 0) ? 4.5f : 1.5f;
            c.add(item, r, 1_000_000L + j);
        }
    }

    static byte[] key(int fill) {
        byte[] k = new byte[32];
        for (int i = 0; i < 32; i++) {
            k[i] = (byte) (fill + i);
        }
        return k;
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        byte[] pub = Files.readAllBytes(Paths.get(args[1]));
        Path dir = Paths.get(args[2]);

        check(!FedrecClient.version().isEmpty(), "version");
        byte[] serverPk = FedrecClient.publicKeyFromFile(pub);
        check(serverPk.length == 64, "public key length");
        byte[] bad = pub.clone();
        bad[20] ^= 1;
        throwsFedrec("FR_EFORMAT", () -> FedrecClient.publicKeyFromFile(bad),
                "corrupted key file");
        throwsFedrec("FR_EFORMAT",
                () -> FedrecClient.publicKeyFromFile(new byte[10]),
                "short key file");
        throwsType(IllegalArgumentException.class,
                () -> new FedrecClient(new byte[10]), "short server key");

        // Bad input on a live handle.
        {
            FedrecClient c = new FedrecClient(serverPk);
            throwsType(IllegalArgumentException.class, () -> c.add(-1, 3f, 0),
                    "negative item");
            throwsFedrec("FR_EINVAL", () -> c.add(5, Float.NaN, 0),
                    "NaN rating");
            throwsFedrec("FR_ENOENT", () -> c.remove(7), "unknown item");
            throwsFedrec("FR_ESTATE", () -> c.recommend(5),
                    "recommend without a model");
            throwsType(IllegalArgumentException.class, () -> c.recommend(-1),
                    "negative count");
            check(c.count() == 0, "empty history");
            check(c.publicKey().length == 64, "device key");
            c.close();
            c.close(); // idempotent
            throwsType(IllegalStateException.class, () -> c.count(),
                    "use after close");
        }

        // Two devices in rounds of two (the aggregator's cohort).
        FedrecClient[] dev = new FedrecClient[2];
        for (int u = 0; u < 2; u++) {
            dev[u] = new FedrecClient(serverPk,
                    dir.resolve("dev" + u + ".state").toString(), key(u + 1),
                    null, 7 + u);
            rate(dev[u], u);
        }
        final int ROUNDS = 3;
        long[][] versions = new long[2][ROUNDS];
        Throwable[] failed = new Throwable[2];
        Thread[] th = new Thread[2];
        for (int u = 0; u < 2; u++) {
            final int uu = u;
            th[u] = new Thread(() -> {
                try {
                    int done = 0;
                    while (done < ROUNDS) {
                        CheckinInfo ci = dev[uu].checkinNng(url, 20000);
                        if (ci.status == CheckinInfo.CONTRIBUTED) {
                            check(ci.bytesUp > 0 && ci.bytesDown > 0, "bytes");
                            versions[uu][done++] = ci.modelVersion;
                        } else {
                            check(ci.status == CheckinInfo.NOT_SELECTED,
                                    "status " + ci.status);
                            Thread.sleep(Math.max(10, ci.retryAfterMs));
                        }
                    }
                    dev[uu].save();
                } catch (Throwable t) {
                    failed[uu] = t;
                }
            });
            th[u].start();
        }
        for (Thread t : th) {
            t.join();
        }
        for (int u = 0; u < 2; u++) {
            if (failed[u] != null) {
                throw new AssertionError("device " + u, failed[u]);
            }
            for (int r = 1; r < ROUNDS; r++) {
                check(versions[u][r] > versions[u][r - 1],
                        "model versions advance");
            }
        }

        // Recommendations from the federated model.
        FedrecClient c = dev[0];
        Set<Integer> rated = new HashSet<>();
        for (int j = 0; j < 40; j++) {
            rated.add((j * 3) % ITEMS);
        }
        Ranked top = c.recommend(10);
        check(top.size() == 10, "10 recommendations");
        for (int j = 0; j < top.size(); j++) {
            check(!rated.contains(top.items[j]), "rated item recommended");
            check(j == 0 || top.scores[j - 1] >= top.scores[j], "best first");
            check(Float.isFinite(c.predict(top.items[j])), "predict");
        }
        Ranked div = c.recommendDiverse(0.3f, 10);
        check(div.size() == 10 && div.items[0] == top.items[0],
                "diverse list starts with the best item");
        Ranked same = c.recommendDiverse(1.0f, 10);
        check(java.util.Arrays.equals(same.items, top.items),
                "lambda 1 is the plain ranking");
        throwsFedrec("FR_EINVAL", () -> c.recommendDiverse(1.5f, 5),
                "lambda above 1");
        Ranked why = c.explain(top.items[0], 3);
        check(why.size() == 3, "three explanations");
        for (int j = 0; j < why.size(); j++) {
            check(rated.contains(why.items[j]), "explained by own ratings");
        }
        throwsFedrec("FR_ENOENT", () -> c.explain(ITEMS + 5, 3),
                "explain outside the catalog");
        dev[0].close();
        dev[1].close();

        // The state file restores interactions and model.
        try (FedrecClient again = new FedrecClient(serverPk,
                dir.resolve("dev0.state").toString(), key(1), null, 7)) {
            check(again.count() == 40, "interactions restored");
            Ranked back = again.recommend(10);
            check(java.util.Arrays.equals(back.items, top.items),
                    "same recommendations after restore");
        }
        throwsFedrec("FR_ECRYPTO",
                () -> new FedrecClient(serverPk,
                        dir.resolve("dev0.state").toString(), key(9), null,
                        7),
                "wrong state key");
        System.out.println("org.fedrec: " + checks + " checks passed");
    }
}
