package kmod

import (
	"reflect"
	"strings"
	"testing"
)

func testIndex() *Index {
	return &Index{
		Release: "6.1.0-test",
		Builtin: map[string]bool{"virtio_ring": true},
		Modules: map[string]*Module{
			"virtio_net":   {Name: "virtio_net", Path: "kernel/drivers/net/virtio_net.ko", Depends: []string{"net_failover"}, Aliases: []string{"virtio:d00000001v*"}},
			"net_failover": {Name: "net_failover", Path: "kernel/drivers/net/net_failover.ko", Depends: []string{"failover"}},
			"failover":     {Name: "failover", Path: "kernel/net/core/failover.ko"},
			"ext4":         {Name: "ext4", Path: "kernel/fs/ext4/ext4.ko", Depends: []string{"mbcache"}, SoftPre: []string{"crc32c"}, Aliases: []string{"fs-ext4"}},
			"mbcache":      {Name: "mbcache", Path: "kernel/fs/mbcache.ko"},
			// As in Debian: ext4's soft dependency "crc32c" is an alias that
			// two modules provide.
			"crc32c_generic": {Name: "crc32c_generic", Path: "kernel/crypto/crc32c_generic.ko", Aliases: []string{"crc32c", "crypto-crc32c"}},
			"crc32c_intel":   {Name: "crc32c_intel", Path: "kernel/arch/x86/crypto/crc32c-intel.ko", Aliases: []string{"crypto-crc32c"}},
			"isofs":          {Name: "isofs", Path: "kernel/fs/isofs/isofs.ko", Aliases: []string{"iso9660", "fs-iso9660"}},
			"usb_storage":    {Name: "usb_storage", Path: "kernel/drivers/usb/storage/usb-storage.ko", Firmware: []string{"x.bin"}},
			// As in Debian 6.1: sd_mod needs crc_t10dif, whose soft
			// dependency "crct10dif" two modules provide, one of them only
			// on CPUs with PCLMULQDQ.
			"sd_mod":            {Name: "sd_mod", Path: "kernel/drivers/scsi/sd_mod.ko", Depends: []string{"scsi_mod", "t10_pi"}},
			"scsi_mod":          {Name: "scsi_mod", Path: "kernel/drivers/scsi/scsi_mod.ko"},
			"t10_pi":            {Name: "t10_pi", Path: "kernel/block/t10-pi.ko", Depends: []string{"crc_t10dif"}},
			"crc_t10dif":        {Name: "crc_t10dif", Path: "kernel/lib/crc-t10dif.ko", Depends: []string{"crct10dif_common"}, SoftPre: []string{"crct10dif"}},
			"crct10dif_common":  {Name: "crct10dif_common", Path: "kernel/crypto/crct10dif_common.ko"},
			"crct10dif_generic": {Name: "crct10dif_generic", Path: "kernel/crypto/crct10dif_generic.ko", Depends: []string{"crct10dif_common"}, Aliases: []string{"crct10dif", "crypto-crct10dif"}},
			"crct10dif_pclmul":  {Name: "crct10dif_pclmul", Path: "kernel/arch/x86/crypto/crct10dif-pclmul.ko", Depends: []string{"crct10dif_common"}, Aliases: []string{"crct10dif", "crypto-crct10dif", "cpu:type:x86,ven*fam*mod*:feature:*0081*"}},
		},
	}
}

func TestExpandAndClosure(t *testing.T) {
	ix := testIndex()
	mods, builtin, err := ix.Expand([]string{"virtio-net", "usb-storage", "iso9660", "ext4", "virtio-ring"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_net", "usb_storage", "isofs", "ext4"}; !reflect.DeepEqual(mods, want) {
		t.Errorf("Expand = %v, want %v", mods, want)
	}
	if !reflect.DeepEqual(builtin, []string{"virtio_ring"}) {
		t.Errorf("builtin = %v", builtin)
	}
	got := ix.Closure(mods)
	want := []string{"crc32c_generic", "crc32c_intel", "ext4", "failover", "isofs", "mbcache", "net_failover", "usb_storage", "virtio_net"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Closure = %v, want %v", got, want)
	}
}

func TestExpandUnknownNamesAll(t *testing.T) {
	_, _, err := testIndex().Expand([]string{"virtio_net", "nosuch", "alsono"})
	if err == nil || !strings.Contains(err.Error(), "nosuch, alsono") || !strings.Contains(err.Error(), "6.1.0-test") {
		t.Errorf("err = %v", err)
	}
}

func TestTables(t *testing.T) {
	ix := testIndex()
	mods := ix.Closure([]string{"virtio_net", "ext4"})
	dep, alias, softdep := ix.Tables(mods)
	for _, want := range []string{
		"kernel/drivers/net/virtio_net.ko: kernel/net/core/failover.ko kernel/drivers/net/net_failover.ko\n",
		"kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko\n",
		"kernel/net/core/failover.ko:\n",
	} {
		if !strings.Contains(string(dep), want) {
			t.Errorf("modules.dep lacks %q:\n%s", want, dep)
		}
	}
	if !strings.Contains(string(alias), "alias virtio:d00000001v* virtio_net\n") || strings.Contains(string(alias), "isofs") {
		t.Errorf("modules.alias:\n%s", alias)
	}
	if string(softdep) != "softdep ext4 pre: crc32c\n" {
		t.Errorf("modules.softdep = %q", softdep)
	}
}

// A soft dependency of a dependency is no hard dependency: sd_mod's line
// in modules.dep names neither crct10dif provider (a loader would fail
// sd_mod with crct10dif_pclmul's ENODEV on a CPU without PCLMULQDQ).
func TestTablesSoftdepOfDependencyStaysSoft(t *testing.T) {
	ix := testIndex()
	mods := ix.Closure([]string{"sd_mod"})
	for _, want := range []string{"crct10dif_generic", "crct10dif_pclmul"} {
		if !contains(mods, want) {
			t.Errorf("closure %v lacks %s: the image must carry every provider", mods, want)
		}
	}
	dep, _, softdep := ix.Tables(mods)
	want := "kernel/drivers/scsi/sd_mod.ko: kernel/lib/crc-t10dif.ko kernel/crypto/crct10dif_common.ko kernel/drivers/scsi/scsi_mod.ko kernel/block/t10-pi.ko\n"
	if !strings.Contains(string(dep), want) {
		t.Errorf("modules.dep lacks %q:\n%s", want, dep)
	}
	if !strings.Contains(string(softdep), "softdep crc_t10dif pre: crct10dif\n") {
		t.Errorf("modules.softdep = %q", softdep)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseSoftdep(t *testing.T) {
	pre, post := parseSoftdep("pre: crc32c aes-x post: y")
	if !reflect.DeepEqual(pre, []string{"crc32c", "aes_x"}) || !reflect.DeepEqual(post, []string{"y"}) {
		t.Errorf("pre %v post %v", pre, post)
	}
}
